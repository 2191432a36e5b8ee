"""Reports from a hand-made result: speedups, strict JSON, CSV flattening, Markdown, plots, atomicity."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

from unetrt.bench.backends import BACKENDS
from unetrt.bench.parity import parity_row
from unetrt.bench.report import check_output_path, markdown, write_csv, write_json, write_plot, write_reports
from unetrt.bench.results import CSV_COLUMNS, BenchResult, add_speedups, new_row, set_timing
from unetrt.bench.timing import TimingStats
from unetrt.errors import MissingDependencyError, OutputError


def _row(backend, size, p50_ms, status="ok"):
    row = new_row(BACKENDS[backend], (1, 3, size, size), device="cpu", threads=2, status=status)
    if status == "ok":
        set_timing(row, TimingStats.from_samples(np.full(5, p50_ms / 1e3)))
        ref = np.random.default_rng(size).standard_normal((1, 2, size, size)).astype(np.float32)
        row.update(parity_row(ref, ref + 1e-6, BACKENDS[backend].precision))
    return row


@pytest.fixture
def result():
    rows = [_row("eager", 32, 10.0), _row("eager", 64, 40.0), _row("ort", 32, 4.0), _row("ort", 64, 8.0),
            _row("ort-fp16", 32, 5.0), _row("trt", 32, None, "skipped: needs a CUDA GPU (none visible)")]
    add_speedups(rows)
    machine = {"cpu": "Test CPU", "usable_cores": 2, "gpu": None, "libraries": {"torch": "2.x"}}
    config = {"threads": 2, "timing": {"warmup": 1, "iters": 5}, "seed": 0, "reference": "eager",
              "model": {"arch": "milesial", "kwargs": {"width": 4}, "params": 1}}
    return BenchResult(machine, config, rows)


def test_speedups_are_eager_p50_over_row_p50(result):
    speed = {(r["backend"], r["height"]): r["speedup_vs_eager"] for r in result.results}
    assert speed[("eager", 32)] == pytest.approx(1.0)
    assert speed[("ort", 32)] == pytest.approx(2.5) and speed[("ort", 64)] == pytest.approx(5.0)
    assert speed[("ort-fp16", 32)] == pytest.approx(2.0)
    assert speed[("trt", 32)] is None


def test_parity_row_fails_outside_tolerance():
    ref = np.zeros((1, 2, 8, 8), np.float32)
    ref[:, 0] = 1.0
    bad = ref.copy()
    bad[:, 1] = 2.0  # flips every argmax
    row = parity_row(ref, bad, "fp16")
    assert row["parity_passed"] is False and "max abs" in row["parity_reason"]
    assert row["argmax_agreement"] == 0.0 and row["mean_iou"] == 0.0
    nan_row = parity_row(ref, np.full_like(ref, np.nan), "fp32")
    assert nan_row["parity_passed"] is False and nan_row["max_abs_err"] is None


def test_json_is_strict_and_complete(result, tmp_path):
    result.results[0]["max_rel_err"] = float("nan")
    path = write_json(result, tmp_path / "r.json")
    text = path.read_text()
    assert "NaN" not in text
    data = json.loads(text)
    assert data["results"][0]["max_rel_err"] is None
    assert data["results"][2]["latency_ms"]["p50"] == pytest.approx(4.0)
    assert set(data["results"][5]) == set(data["results"][0])  # skipped rows carry every field


def test_csv_is_flat(result, tmp_path):
    with open(write_csv(result, tmp_path / "r.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert rows[2]["shape"] == "1x3x32x32" and float(rows[2]["latency_p50_ms"]) == pytest.approx(4.0)
    assert rows[5]["latency_p50_ms"] == "" and rows[5]["status"].startswith("skipped")


def test_markdown_table(result):
    md = markdown(result)
    lines = [line for line in md.splitlines() if line.startswith("| 1x3x")]
    assert len(lines) == 6
    assert "2.50x" in lines[2] and "pass" in lines[2] and "skipped: needs a CUDA GPU" in lines[5]
    assert "Test CPU" in md


def test_check_output_path(tmp_path):
    assert check_output_path(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path, "--json")
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="not writable"):
        check_output_path(tmp_path / "f" / "r.json", "--json")


def test_writes_are_atomic_and_leave_no_temp_files(result, tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    write_reports(result, json_path=target, csv_path=tmp_path / "r.csv", markdown_path=tmp_path / "r.md")
    assert json.loads(target.read_text())["results"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.json", "r.md"]


def test_plot_is_a_png(result, tmp_path):
    pytest.importorskip("matplotlib")
    path = write_plot(result, tmp_path / "plots" / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_plot_without_matplotlib_names_the_extra(result, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib...` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'unetrt\[bench\]'"):
        write_plot(result, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()
