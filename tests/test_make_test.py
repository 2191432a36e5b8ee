"""`make test` prints the fast-subset command, and that command, pasted into a shell, runs pytest -m "not slow"."""

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _dry_run(*args: str) -> list[str]:
    """The shell lines `make -n test ARGS` would run (prerequisites assumed built)."""
    res = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed-dev",
                          "test", *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.replace("\\\n", " ").splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_printed_fast_subset_command_runs_the_fast_subset():
    (recipe,) = [line for line in _dry_run() if "-m pytest" in line]
    hint = subprocess.run(["sh", "-c", recipe.replace(".venv/bin/python -m pytest", "true")], capture_output=True,
                          text=True, timeout=60).stdout
    assert hint.startswith("make test: ") and "(exit 0)" in hint, hint
    command = shlex.split(hint.split("Fast subset (not marked slow): ", 1)[1])
    assert command[:2] == ["make", "test"]
    (fast,) = [line for line in _dry_run(*command[2:]) if "-m pytest" in line]
    pytest_argv = shlex.split(fast.split(";")[1])
    assert pytest_argv[-2:] == ["-m", "not slow"], fast
