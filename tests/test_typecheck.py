"""mypy over the TensorRT-facing modules against ``tensorrt-stubs`` (installed by ``make dev`` into
``.venv/typestubs``): the modules must pass, and a misuse of the TensorRT API must be caught (proof that the
stubs, not ``Any``, are what the modules are checked against)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUBS = ROOT / ".venv" / "typestubs"


def _modules() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    block = re.search(r"TYPECHECKED := (.*?)\n(?!\t)", text, re.S)[1]
    return block.replace("\\", " ").split()


def _mypy(*paths: str) -> subprocess.CompletedProcess:
    if not (STUBS / "tensorrt_bindings" / "tensorrt.pyi").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"tensorrt-stubs missing in {STUBS}: `make dev` installs them (scripts/trt_stubs.py)")
        pytest.skip(f"tensorrt-stubs not installed in {STUBS} (run `make dev`)")
    pytest.importorskip("mypy")
    env = {**os.environ, "MYPYPATH": str(STUBS)}
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".venv" / "mypy-cache"), *paths],
                          capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)


@pytest.mark.slow
def test_tensorrt_modules_pass_mypy_and_misuse_is_caught(tmp_path):
    """One mypy run: our modules report nothing; a deliberate misuse beside them reports exactly its errors."""
    modules = _modules()
    assert "unetrt/runtime/trt.py" in modules and "unetrt/exporter/trt_builder.py" in modules
    bad = tmp_path / "misuse.py"
    bad.write_text("from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
                   "if TYPE_CHECKING:\n    import tensorrt\n\n"
                   "def f(config: tensorrt.IRuntimeConfig, ctx: tensorrt.IExecutionContext) -> None:\n"
                   "    config.create_runtime_cache()\n    ctx.set_input_shapes('x', (1,))\n")
    res = _mypy(*modules, str(bad))
    errors = [line for line in res.stdout.splitlines() if ": error:" in line]
    ours = [line for line in errors if not line.split(":", 1)[0].endswith("misuse.py")]
    assert ours == [], res.stdout
    assert any('"IRuntimeConfig" has no attribute "create_runtime_cache"' in e for e in errors), res.stdout
    assert any('"IExecutionContext" has no attribute "set_input_shapes"' in e for e in errors), res.stdout
