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
    ("artifacts", ("unetrt.exporter", "unetrt.runtime", "unetrt.bench", "unetrt.cli", "unetrt.serve", "unetrt.models")),
    ("runtime", ("unetrt.exporter", "unetrt.bench", "unetrt.cli", "unetrt.serve")),
    ("models", ("unetrt.exporter", "unetrt.runtime", "unetrt.bench", "unetrt.cli", "unetrt.artifacts")),
    ("exporter", ("unetrt.runtime", "unetrt.bench", "unetrt.cli", "unetrt.serve")),
    ("bench", ("unetrt.cli", "unetrt.serve")),
])
def test_no_module_imports_upward(layer, forbidden):
    bad = {f: sorted(n for n in names if n.startswith(forbidden)) for f, names in _imports(layer).items()}
    assert {f: n for f, n in bad.items() if n} == {}


@pytest.mark.parametrize("layer", ["artifacts", "runtime", "bench"])
def test_no_import_circle_inside_a_layer(layer):
    """Module-level, function-level and ``import_module("...")`` imports alike: no module of the layer
    reaches itself again."""
    graph = {}
    for file, names in _imports(layer).items():
        module = "unetrt." + file[:-3].replace("/", ".").removesuffix(".__init__")
        loaded = {node.args[0].value for node in ast.walk(ast.parse((PACKAGE / file).read_text()))
                  if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) ==
                  "import_module" and node.args and isinstance(node.args[0], ast.Constant)}
        graph[module] = {n for n in names | loaded if str(n).startswith(f"unetrt.{layer}.")}
    graph = {m: {n if n in graph else n.rsplit(".", 1)[0] for n in deps} & set(graph) - {m} for m, deps in graph.items()}
    circles = []

    def walk(node, path):
        for nxt in sorted(graph[node]):
            if nxt == path[0]:
                circles.append(path + [nxt])
            elif nxt not in path and nxt > path[0]:
                walk(nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, [start])
    assert circles == []


def test_bench_uses_only_the_exporters_public_api():
    public = {"unetrt.exporter", "unetrt.exporter.ExportConfig", "unetrt.exporter.EngineOptions",
              "unetrt.exporter.export"}
    used = {n for names in _imports("bench").values() for n in names if n.startswith("unetrt.exporter")}
    assert used <= public, used - public


def test_cli_help_does_not_import_torch():
    code = "import sys; from unetrt.cli import main; main(['--help'], standalone_mode=False); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
