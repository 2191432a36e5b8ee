"""Data flows one way: models -> exporter -> artifacts <- runtime -> bench, CLI on top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "unetrt"


def _imports(layer: str) -> dict[str, set[str]]:
    """``{module file: absolute unetrt modules it imports}`` for every module of ``unetrt/<layer>``."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        package = ["unetrt", *path.relative_to(PACKAGE).parent.parts]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                names.add(module)
                names.update(f"{module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        found[str(path.relative_to(PACKAGE))] = {n for n in names if n.startswith("unetrt")}
    return found


@pytest.mark.parametrize("layer, forbidden", [
    ("artifacts", ("unetrt.exporter", "unetrt.runtime", "unetrt.bench", "unetrt.cli", "unetrt.serve")),
    ("runtime", ("unetrt.exporter", "unetrt.bench", "unetrt.cli", "unetrt.serve")),
    ("models", ("unetrt.exporter", "unetrt.runtime", "unetrt.bench", "unetrt.cli", "unetrt.artifacts")),
    ("exporter", ("unetrt.runtime", "unetrt.bench", "unetrt.cli", "unetrt.serve")),
    ("bench", ("unetrt.cli", "unetrt.serve")),
])
def test_no_module_imports_upward(layer, forbidden):
    bad = {f: sorted(n for n in names if n.startswith(forbidden)) for f, names in _imports(layer).items()}
    assert {f: n for f, n in bad.items() if n} == {}


def test_bench_uses_only_the_exporters_public_api():
    public = {"unetrt.exporter", "unetrt.exporter.ExportConfig", "unetrt.exporter.EngineOptions",
              "unetrt.exporter.export"}
    used = {n for names in _imports("bench").values() for n in names if n.startswith("unetrt.exporter")}
    assert used <= public, used - public


def test_cli_help_does_not_import_torch():
    code = "import sys; from unetrt.cli import main; main(['--help'], standalone_mode=False); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
