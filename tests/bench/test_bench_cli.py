"""``unet-bench`` through click's CliRunner: the tiny grid's reports, and bad input."""

from __future__ import annotations

import csv
import json
import math
import os

import pytest

from unetrt.bench.backends import BACKENDS
from unetrt.parity import FP16_TOLERANCE, FP32_TOLERANCE

LATENCY = {"p50", "p90", "p99", "mean", "std", "min", "max"}
PARITY = ("max_abs_err", "mean_abs_err", "p99_abs_err", "rel_to_range", "argmax_agreement", "mean_iou", "dice")


def _rows(data, backend):
    return [r for r in data["results"] if r["backend"] == backend]


def test_json_has_machine_config_and_one_row_per_backend_and_shape(grid):
    _, _, data = grid
    assert set(data) == {"machine", "config", "results"}
    machine = data["machine"]
    assert machine["cpu"] and machine["usable_cores"] >= 1 and machine["libraries"]["torch"].startswith("2.")
    assert machine["libraries"]["onnxruntime"]
    config = data["config"]
    assert config["threads"] == 2 and config["timing"]["iters"] == 3 and config["timing"]["warmup"] == 1
    assert config["backends"] == ["eager", "ort", "ort-fp16", "trt", "ort-cuda"]
    assert config["model"]["kwargs"]["width"] == 4
    shapes = {(r["backend"], tuple(r["shape"])) for r in data["results"]}
    assert shapes == {(b, (1, 3, s, s)) for b in config["backends"] for s in (32, 48)}
    assert len(data["results"]) == 10


def test_ok_rows_have_real_latencies_and_parity_within_tolerance(grid):
    _, _, data = grid
    for backend, tol in (("eager", FP32_TOLERANCE), ("ort", FP32_TOLERANCE), ("ort-fp16", FP16_TOLERANCE)):
        rows = _rows(data, backend)
        assert len(rows) == 2
        for r in rows:
            assert r["status"] == "ok", r
            assert set(r["latency_ms"]) == LATENCY
            lat = r["latency_ms"]
            assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
            assert r["iterations"] == 3 and r["throughput_ips"] == pytest.approx(1e3 / lat["mean"])
            assert r["peak_memory_mb"] > 0 and "RSS" in r["memory_kind"]
            assert r["threads"] == 2 and r["device"] == "cpu"
            for key in PARITY:
                assert isinstance(r[key], float) and math.isfinite(r[key]), (backend, key, r[key])
            assert r["max_abs_err"] <= tol.atol_factor * 10  # |logits| of a width-4 net stay well below 10
            assert r["mean_abs_err"] <= r["p99_abs_err"] <= r["max_abs_err"]
            assert r["argmax_agreement"] >= 0.995 and r["mean_iou"] > 0.99 and r["dice"] > 0.99
            assert r["parity_passed"] is True and r["parity_reason"] is None
            assert r["output_shape"] == [1, 2, r["height"], r["width"]]
            assert r["speedup_vs_eager"] == pytest.approx(_rows(data, "eager")[rows.index(r)]["latency_ms"]["p50"]
                                                          / lat["p50"])
    assert all(r["max_abs_err"] == 0.0 for r in _rows(data, "eager"))  # eager on CPU is the reference
    assert any(r["max_abs_err"] > 0.0 for r in _rows(data, "ort-fp16"))  # FP16 weights do round
    assert any("FP16 accuracy, not FP16 speed" in n for n in _rows(data, "ort-fp16")[0]["notes"])


def test_unavailable_backends_are_skipped_rows_with_a_reason(grid):
    _, _, data = grid
    for backend, needle in (("trt", "CUDA GPU"), ("ort-cuda", "CUDAExecutionProvider")):
        for r in _rows(data, backend):
            assert r["status"].startswith("skipped: ") and needle in r["status"]
            assert r["latency_ms"] is None and r["parity_passed"] is None and r["speedup_vs_eager"] is None


def test_csv_and_markdown_are_written(grid):
    result, out, data = grid
    with open(out / "sub" / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(data["results"])
    first = rows[0]
    assert first["backend"] == "eager" and first["shape"] == "1x3x32x32"
    assert float(first["latency_p50_ms"]) == pytest.approx(data["results"][0]["latency_ms"]["p50"])
    assert first["parity_passed"] == "True" and rows[-1]["status"].startswith("skipped")
    md = (out / "r.md").read_text()
    assert md.count("\n| 1x3x") == 10 and "| shape | backend | p50 ms" in md and "skipped: " in md
    assert "vs eager" in md
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    assert "1x3x48x48" in result.output and "trt: skipped: needs a CUDA GPU" in result.output
    assert "wrote" in result.output


def test_second_run_reuses_the_cached_artifacts(run_bench, workdir, tmp_path):
    res = run_bench("--arch", "milesial", "--width", "4", "--sizes", "32", "--backends", "ort,ort-fp16",
                    "--iters", "2", "--warmup", "0", "--workdir", workdir, "--json", tmp_path / "r.json")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert {k: v["reused"] for k, v in data["config"]["artifacts"].items()} == {"onnx": True, "onnx_fp16": True}
    assert all(r["parity_passed"] for r in data["results"])
    assert [r["speedup_vs_eager"] for r in data["results"]] == [None, None]  # no eager row to compare with


def test_real_images_as_inputs(run_bench, workdir, tmp_path):
    from pathlib import Path

    import unetrt

    samples = Path(unetrt.__file__).parent / "assets" / "samples"
    res = run_bench("--arch", "milesial", "--width", "4", "--sizes", "48x32", "--batch", "2", "--backends",
                    "eager,ort", "--iters", "2", "--warmup", "0", "--images", samples, "--workdir", workdir,
                    "--json", tmp_path / "r.json")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["config"]["images"] == str(samples)
    assert [r["shape"] for r in data["results"]] == [[2, 3, 48, 32]] * 2
    assert all(r["status"] == "ok" and r["parity_passed"] for r in data["results"])


@pytest.mark.parametrize("args, needles", [
    (["--backends", "eager,onnx,tensorrt"], ["unknown backend(s) 'onnx', 'tensorrt'", *BACKENDS]),
    (["--sizes", "8"], ["size 8x8 is not admissible for milesial", "H and W >= 16"]),
    (["--arch", "same", "--sizes", "64,40"], ["size 40x40 is not admissible for same", "multiples of 16"]),
    (["--sizes", "32,abc"], ["invalid size 'abc'"]),
    (["--batch", "0"], ["invalid batch size '0'"]),
    (["--iters", "0"], ["--iters 0", "positive"]),
    (["--iters", "-2"], ["--iters -2"]),
    (["--warmup", "-1"], ["--warmup -1"]),
    (["--min-seconds", "0"], ["--min-seconds 0.0"]),
    (["--iters", "3", "--min-seconds", "1"], ["not both"]),
    (["--threads", "0"], ["--threads 0"]),
    (["--images", "/nonexistent/images"], ["--images /nonexistent/images is not a directory"]),
    (["--workdir", "/etc/passwd/cache"], ["--workdir /etc/passwd/cache cannot be used"]),
    pytest.param(["--device", "cuda"], ["--device cuda but PyTorch sees no CUDA GPU"], marks=pytest.mark.skipif(
        __import__("torch").cuda.is_available(), reason="this machine has a GPU")),
])
def test_bad_input_is_one_clear_line(run_bench, tmp_path, args, needles):
    base = ["--width", "4", "--workdir", tmp_path / "w"]
    if "--arch" not in args:
        base = ["--arch", "milesial"] + base
    res = run_bench(*base, *args)
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    for needle in needles:
        assert needle in lines[0]
    assert not (tmp_path / "w").exists()  # refused before exporting anything


def test_unwritable_output_paths_fail_before_running(run_bench, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [("--json", blocker / "r.json", "is not writable"), ("--csv", tmp_path, "is a directory"),
             ("--markdown", blocker / "deeper" / "r.md", "is not writable")]
    for flag, path, needle in cases:
        res = run_bench("--arch", "milesial", "--width", "4", "--workdir", tmp_path / "w", flag, path)
        assert res.exit_code == 1 and needle in res.output and flag in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()


def test_fail_on_parity_exits_non_zero(run_bench, workdir, tmp_path, monkeypatch):
    import unetrt.bench.parity as bench_parity
    from unetrt.parity import Tolerance

    monkeypatch.setitem(bench_parity.TOLERANCES, "fp16", Tolerance(atol_factor=1e-9))
    res = run_bench("--arch", "milesial", "--width", "4", "--sizes", "32", "--backends", "ort-fp16", "--iters",
                    "1", "--warmup", "0", "--workdir", workdir, "--fail-on-parity")
    assert res.exit_code == 1 and "failed parity: ort-fp16 1x3x32x32" in res.output
    assert "parity: max abs" in res.output
