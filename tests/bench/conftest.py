"""One tiny benchmark grid through the CLI, shared by the bench tests (~12 s, most of it the export).

milesial width 4 at 32x32 and 48x48, batch 1, eager + ort + ort-fp16 plus two backends this CPU
machine cannot run (trt, ort-cuda), 3 timed iterations; every report written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from unetrt.cli.bench import bench_cmd

GRID_BACKENDS = ("eager", "ort", "ort-fp16", "trt", "ort-cuda")
GRID_SIZES = ((32, 32), (48, 48))


def invoke(*args: str):
    """Run ``unet-bench`` in-process; returns click's Result (stderr mixed into ``output``)."""
    return CliRunner().invoke(bench_cmd, [str(a) for a in args])


@pytest.fixture(scope="session")
def run_bench():
    """The :func:`invoke` helper, as a fixture (test modules do not import conftest)."""
    return invoke


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench_cache")


@pytest.fixture(scope="session")
def grid(tmp_path_factory, workdir):
    """``(result, out_dir, json_data)`` of the tiny grid."""
    out = tmp_path_factory.mktemp("bench_out")
    result = invoke("--arch", "milesial", "--width", "4", "--sizes", "32,48", "--batch", "1",
                    "--backends", ",".join(GRID_BACKENDS), "--warmup", "1", "--iters", "3", "--threads", "2",
                    "--workdir", str(workdir), "--json", str(out / "r.json"), "--csv", str(out / "sub" / "r.csv"),
                    "--markdown", str(out / "r.md"))
    assert result.exit_code == 0, result.output
    return result, out, json.loads((out / "r.json").read_text())
