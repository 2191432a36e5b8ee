"""Progress output (rich on a terminal, plain lines elsewhere) and the unet-bench console table."""

import io
import re

import numpy as np
from rich.console import Console

from unetrt.bench.backends import BACKENDS
from unetrt.bench.report import noisy_rows, render
from unetrt.bench.results import BenchResult, add_speedups, new_row, set_timing
from unetrt.bench.timing import TimingStats
from unetrt.cli.options import make_console
from unetrt.cli.progress import Reporter


def _console(terminal: bool, width: int = 80):
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=width, color_system=None), buf


def test_plain_lines_off_a_terminal():
    con, buf = _console(False)
    now = [0.0]
    with Reporter(con, clock=lambda: now[0]) as report:
        for t, args in ((1.0, ("tracing with torch.export",)),
                        (1.5, ("fp16: 1 extra nodes FP32 -> fail (max_abs 0.5, argmax 0.9)",)),
                        (2.0, ("fp16: 2 extra nodes FP32 -> fail (max_abs 0.4, argmax 0.9)",)),  # same kind: dropped
                        (9.0, ("fp16: 3 extra nodes FP32 -> pass (max_abs 0.01, argmax 1)",)),   # 7.5 s on: printed
                        (9.2, ("building fp16 engine (tensorrt-rtx 1.7): Building engine 1/6",)),
                        (9.3, ("building fp16 engine (tensorrt-rtx 1.7): Timing tactics 2/3",)),  # same step: dropped
                        (9.5, ("tiles", 3, 4)), (9.6, ("tiles", 4, 4))):
            now[0] = t
            report(*args)
    lines = buf.getvalue().splitlines()
    assert lines == ["[    1.0s] tracing with torch.export",
                     "[    1.5s] fp16: 1 extra nodes FP32 -> fail (max_abs 0.5, argmax 0.9)",
                     "[    9.0s] fp16: 3 extra nodes FP32 -> pass (max_abs 0.01, argmax 1)",
                     "[    9.2s] building fp16 engine (tensorrt-rtx 1.7): Building engine 1/6",
                     "[    9.5s] 3/4 tiles", "[    9.6s] 4/4 tiles"]


def test_terminal_shows_finished_steps_with_their_time():
    con, buf = _console(True)
    with Reporter(con) as report:
        report("tracing with torch.export")
        report("building fp16 engine (tensorrt-rtx 1.2): Building engine 2/5")
        report("writing manifest")
    text = buf.getvalue()
    assert re.search(r"✓ tracing with torch.export  \d+\.\ds", text)
    assert re.search(r"✓ writing manifest  \d+\.\ds", text)
    assert "✓ building fp16 engine" not in text                                # a sub-step, not a step


def test_logs_never_wrap_long_lines(monkeypatch):
    con = make_console()                                                      # stderr under pytest: not a terminal
    assert not con.is_terminal and con.width > 1000


def _row(backend, p50_ms, samples=None, err=None):
    row = new_row(BACKENDS[backend], (1, 3, 64, 64), device="cpu", threads=2)
    set_timing(row, TimingStats.from_samples(np.asarray(samples if samples is not None else [p50_ms / 1e3] * 5)))
    row.update(max_abs_err=err, argmax_agreement=0.987654, parity_passed=True)
    return row


def _result(rows):
    add_speedups(rows)
    machine = {"cpu": "Test CPU", "usable_cores": 2, "gpu": None, "libraries": {}}
    config = {"threads": 2, "timing": {"warmup": 1, "iters": 5}, "seed": 0, "reference": "eager",
              "model": {"arch": "milesial", "kwargs": {"width": 4}, "params": 1}}
    return BenchResult(machine, config, rows)


def test_bench_table_keeps_numbers_whole_on_a_narrow_console():
    skipped = new_row(BACKENDS["trt"], (1, 3, 64, 64), device="cpu", threads=2,
                      status="skipped: needs a CUDA GPU and an installed TensorRT flavour (none visible here)")
    result = _result([_row("eager", 10.0, err=0.0), _row("ort", 4.0, err=1.234e-05), skipped])
    con, buf = _console(False, width=60)
    render(result, con)
    text = buf.getvalue()
    assert "1.2e-05" in text and "0.9877" in text and "pass" in text and "…" not in text
    assert "trt: skipped: needs a CUDA GPU and an installed TensorRT flavour (none visible here)" in text.replace(
        "\n", " ")


def test_noisy_rows_are_flagged():
    steady = _row("eager", 10.0, samples=[0.010, 0.0101, 0.0099, 0.010, 0.0102])
    noisy = _row("ort", 4.0, samples=[0.002, 0.004, 0.004, 0.004, 0.009, 0.010])
    result = _result([steady, noisy])
    assert noisy_rows(result) == ["ort 1x3x64x64: p90/p50 2.38, p50/min 2.00"]
    con, buf = _console(False, width=200)
    render(result, con)
    assert "warning: noisy timings" in buf.getvalue() and "ort 1x3x64x64" in buf.getvalue()
