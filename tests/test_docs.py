"""The README front page and the MkDocs site in docs/: strict build, every page in the nav, links that resolve."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _nav_pages() -> list[str]:
    yaml = pytest.importorskip("yaml")

    def walk(entry):
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            for value in entry.values():
                yield from walk(value)
        elif isinstance(entry, list):
            for value in entry:
                yield from walk(value)

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return [page for page in walk(config["nav"]) if not re.match(r"[a-z]+://", page)]


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                          "-d", str(site)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    manifest_page = (site / "manifest" / "index.html").read_text()
    assert "schema_version" in manifest_page and "EngineEntry" in manifest_page
    assert (site / "index.html").is_file()


def test_every_docs_page_is_in_the_nav():
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    nav = _nav_pages()
    assert sorted(pages - set(nav)) == [], "docs pages missing from mkdocs.yml's nav: add them there"
    assert sorted(set(nav) - pages) == [], "mkdocs.yml's nav names pages that do not exist"
    assert len(nav) == len(set(nav)), "a page is listed twice in the nav"
    assert nav[0] == "index.md"


@pytest.mark.parametrize("page", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.md"))])
def test_relative_links_resolve(page):
    path = ROOT / page
    broken = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file_part = target.split("#", 1)[0]
        if not (path.parent / file_part).exists():
            broken.append(target)
    assert broken == [], f"{page}: links to files that do not exist: {broken}"


def test_repository_paths_named_in_the_docs_exist():
    """Paths like `benchmarks/results/amd-epyc-2c/` in backticks name files of this repository."""
    named = re.compile(r"`((?:benchmarks|examples|scripts|tests|unetrt)/[\w./-]*)`")
    missing = []
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for path in named.findall(page.read_text()):
            if not (ROOT / path).exists():
                missing.append(f"{page.name}: {path}")
    assert missing == []


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move reference material to docs/"
    commands = [line.split("#")[0].strip() for line in lines if line.startswith("make ")]
    assert commands[:2] == ["make demo", "make test"]
    assert "(docs/index.md)" in "\n".join(lines), "README.md links the documentation's home page"
