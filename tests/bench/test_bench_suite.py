"""benchmarks/run_suite.py and its --ablation mode, on a width-4 milesial (artifacts from the shared cache)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("run_suite", ROOT / "benchmarks" / "run_suite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_suite_writes_per_variant_reports_and_a_readme(suite, workdir, tmp_path, grid):
    rc = suite.main(["--archs", "milesial", "--width", "4", "--sizes", "32", "--batch", "1", "--backends",
                     "eager,ort,trt", "--iters", "2", "--warmup", "0", "--workdir", str(workdir), "--out",
                     str(tmp_path), "--no-plots"])
    assert rc == 0
    (machine_dir,) = tmp_path.iterdir()
    assert {p.name for p in machine_dir.iterdir()} == {"milesial.json", "milesial.csv", "milesial.md", "suite.json",
                                                       "README.md"}
    data = json.loads((machine_dir / "milesial.json").read_text())
    assert [r["status"][:7] for r in data["results"]] == ["ok", "ok", "skipped"]
    readme = (machine_dir / "README.md").read_text()
    assert "| milesial | 1x3x32x32 |" in readme and "all pass" in readme
    assert "Target" not in readme  # the target is about width 64


def test_target_check(suite):
    from unetrt.bench.results import BenchResult

    rows = [{"backend": b, "shape": [1, 3, 256, 256], "status": "ok", "latency_ms": {"p50": p}}
            for b, p in (("eager", 300.0), ("ort", 200.0))]
    result = BenchResult({}, {"model": {"arch": "milesial", "kwargs": {"width": 64}}, "threads": 2}, rows)
    check = suite.target_check(result)
    assert check["ratio"] == pytest.approx(2 / 3) and check["met"] is True
    rows[1]["latency_ms"]["p50"] = 250.0
    assert suite.target_check(result)["met"] is False


def test_admissible_sizes_move_up_to_the_nearest_valid_size(suite):
    assert suite.admissible_sizes("same", {"width": 4}, [(250, 250), (256, 256)]) == [(256, 256)]
    assert suite.admissible_sizes("milesial", {"width": 4}, [(100, 100)]) == [(100, 100)]


def test_ablation_table(suite, workdir, tmp_path, grid):
    rc = suite.main(["--ablation", "--width", "4", "--size", "32", "--iters", "2", "--warmup", "0", "--rounds", "1",
                     "--workdir", str(workdir), "--out", str(tmp_path)])
    assert rc == 0
    (machine_dir,) = tmp_path.iterdir()
    data = json.loads((machine_dir / "ablation.json").read_text())
    variants = [r["variant"] for r in data["results"]]
    assert len(variants) == 11 and variants[0].startswith("eager: TorchRunner")
    assert any("channels_last" in v for v in variants) and any("arena off" in v for v in variants)
    assert all(r["p50_ms"] > 0 for r in data["results"])
    md = (machine_dir / "ablation.md").read_text()
    assert "ONNX Runtime (grid setting) / eager (grid setting)" in md
