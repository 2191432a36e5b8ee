"""Every installation users are told to make holds exactly one ONNX Runtime.

``onnxruntime`` and ``onnxruntime-gpu`` both write the ``onnxruntime/`` package; with both installed the last
one wins and the CUDA / TensorRT execution providers can vanish. The requirement sets are evaluated from the
package metadata (install_requires + the chosen extras, environment markers applied with
``packaging.markers``), from setup.cfg and, when unetrt is installed, from the installed metadata, for every
``unetrt[...]`` / ``.[...]`` combination found in the install lines of the README, docs/, examples/ and the
Makefile."""

from __future__ import annotations

import configparser
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
ORTS = {"onnxruntime", "onnxruntime-gpu"}
#: Dependencies of extras that pull an ONNX Runtime themselves (their own metadata, Linux x86_64):
#: nvidia-modelopt[onnx] requires onnxruntime-gpu.
TRANSITIVE = {"nvidia-modelopt": {"onnxruntime-gpu"}}
#: Where the install lines live.
DOCS = ["README.md", "Makefile", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").rglob("README.md"))]
_LINE = re.compile(r"(?:pip|\$\(PIP\)) install[^\n`]*")
_EXTRAS = re.compile(r"(?:\bunetrt|(?<![\w/])\.)\[([A-Za-z0-9_,\- ]+)\]")


def _documented_combinations() -> dict[tuple[str, ...], list[str]]:
    """``{extras: [file:line, ...]}`` for each ``pip install`` line naming unetrt (or ``.`` in the Makefile)."""
    found: dict[tuple[str, ...], list[str]] = {}
    for rel in DOCS:
        for no, text in enumerate((ROOT / rel).read_text().splitlines(), 1):
            for line in _LINE.findall(text):
                combos = [tuple(sorted(e.strip() for e in m.split(","))) for m in _EXTRAS.findall(line)]
                if not combos and re.search(r"pip install\s+['\"]?unetrt\b(?!\[)", line):
                    combos = [()]
                for combo in combos:
                    found.setdefault(combo, []).append(f"{rel}:{no}")
    return found


def _setup_cfg_requirements() -> list[Requirement]:
    """setup.cfg's install_requires and extras as Requires-Dist lines (``; extra == "x"`` markers)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")

    def lines(text: str) -> list[str]:
        return [s.strip() for s in text.splitlines() if s.strip() and not s.strip().startswith("#")]

    out = [Requirement(s) for s in lines(cfg["options"]["install_requires"])]
    for extra, text in cfg["options.extras_require"].items():
        for s in lines(text):
            req = Requirement(s)
            marker = f"({req.marker}) and extra == '{extra}'" if req.marker else f"extra == '{extra}'"
            out.append(Requirement(f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}"
                                   f"{req.specifier}; {marker}"))
    return out


def _installed_requirements() -> list[Requirement] | None:
    try:
        dist = metadata.distribution("unetrt")
    except metadata.PackageNotFoundError:
        return None
    return [Requirement(text) for text in dist.requires or []]


def requirement_set(reqs: list[Requirement], extras: tuple[str, ...]) -> set[str]:
    """The distribution names an install of ``unetrt[extras]`` asks for (markers evaluated on a Linux
    x86_64 CPython 3.11, the platform of the GPU wheels), plus the ONNX Runtimes they are known to pull."""
    env = dict(default_environment(), sys_platform="linux", platform_system="Linux", platform_machine="x86_64",
               python_version="3.11", python_full_version="3.11.7", implementation_name="cpython")
    names: set[str] = set()
    for req in reqs:
        if req.marker is None or any(req.marker.evaluate(dict(env, extra=e)) for e in ("", *extras)):
            names.add(req.name.lower())
    for name in list(names):
        names |= TRANSITIVE.get(name, set())
    return names


def _sources():
    yield "setup.cfg", _setup_cfg_requirements()
    installed = _installed_requirements()
    if installed is not None:
        yield "installed metadata", installed


DOCUMENTED = _documented_combinations()
#: What the README, docs, examples and Makefile tell users to install must include these.
MUST_COVER = {("cpu", "rtx"), ("cpu", "dev", "rtx"), ("gpu",)}


def test_install_lines_were_found():
    assert MUST_COVER <= set(DOCUMENTED), f"install lines found: {sorted(DOCUMENTED)}"


@pytest.mark.parametrize("source, reqs", list(_sources()), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("extras", sorted(DOCUMENTED), ids=lambda e: "extras=" + "+".join(e))
def test_documented_install_has_one_onnxruntime(source, reqs, extras):
    got = requirement_set(reqs, extras) & ORTS
    where = ", ".join(DOCUMENTED[extras])
    assert len(got) == 1, f"{source}: unetrt[{','.join(extras)}] ({where}) installs ONNX Runtimes {sorted(got)}"


@pytest.mark.parametrize("source, reqs", list(_sources()), ids=lambda v: v if isinstance(v, str) else "")
def test_cpu_and_gpu_extras_name_their_runtime(source, reqs):
    assert requirement_set(reqs, ()) & ORTS == set(), f"{source}: install_requires must not name an ONNX Runtime"
    assert requirement_set(reqs, ("cpu",)) & ORTS == {"onnxruntime"}
    assert requirement_set(reqs, ("gpu",)) & ORTS == {"onnxruntime-gpu"}
    assert requirement_set(reqs, ("gpu", "modelopt")) & ORTS == {"onnxruntime-gpu"}


def test_requirement_set_sees_both_runtimes():
    """The check can fail: a metadata set with onnxruntime in install_requires and the GPU wheel in [gpu]."""
    reqs = [Requirement("onnxruntime>=1.20"), Requirement('onnxruntime-gpu>=1.31; extra == "gpu"'),
            Requirement('tensorrt-rtx>=1.0; extra == "rtx" and platform_system == "Windows"')]
    assert requirement_set(reqs, ("gpu",)) & ORTS == ORTS
    assert "tensorrt-rtx" not in requirement_set(reqs, ("rtx",))
    assert requirement_set(reqs, ("cpu", "modelopt")) == {"onnxruntime"}
    assert requirement_set([Requirement('nvidia-modelopt[onnx]; extra == "modelopt"')], ("modelopt",)) == \
        {"nvidia-modelopt", "onnxruntime-gpu"}


def test_no_onnxruntime_is_one_line_naming_both_extras(monkeypatch):
    import sys

    from unetrt.artifacts.ort import import_onnxruntime, make_session
    from unetrt.errors import MissingDependencyError
    from unetrt.runtime.backend_table import _ort_missing

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    for call in (import_onnxruntime, lambda: make_session(b"")):
        with pytest.raises(MissingDependencyError) as info:
            call()
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith("onnxruntime cannot be imported")
        assert "'unetrt[cpu]'" in msg and "'unetrt[gpu]'" in msg and "not both" in msg
    assert _ort_missing() == "onnxruntime is not installed (pip install 'unetrt[cpu]' or 'unetrt[gpu]')"
