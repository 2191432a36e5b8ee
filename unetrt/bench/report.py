"""Benchmark reports: a rich table, JSON, CSV, Markdown and a PNG plot, each written atomically.

Files are written to a temporary file in the target's directory and moved over the target with
``os.replace``, so a reader never sees half a report. matplotlib is imported only for plots.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, OutputError
from .results import CSV_COLUMNS, BenchResult, flat_row
from ..fileio import atomic_write_bytes

__all__ = ["noisy_rows", "check_output_path", "write_json", "write_csv", "write_markdown", "write_plot", "markdown",
           "rich_table", "render", "write_reports", "to_jsonable", "require_matplotlib",
           "write_text_atomic"]


def check_output_path(path: str | os.PathLike, option: str = "output") -> Path:
    """Refuse, before any work, a report path that cannot be written.

    Raises:
        OutputError: ``path`` is a directory, or its nearest existing parent is not a writable directory.
    """
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise OutputError(f"{option} {path} is a directory", "a file path", f"e.g. {option} {Path(path) / 'bench'}")
    parent = next((p for p in target.parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path} is not writable ({parent} is not a writable directory)",
                          "a path in a writable directory", f"choose another {option} path")
    return target


def _atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    target = Path(path).expanduser()
    try:
        return atomic_write_bytes(target, data)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror}", "a writable location",
                          "choose another path") from None


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and ``os.replace``."""
    return _atomic_write(path, text.encode())


def to_jsonable(value: Any) -> Any:
    """Strict-JSON copy: NaN/inf -> ``None``, tuples -> lists, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(result: BenchResult, path: str | os.PathLike) -> Path:
    """``{"machine", "config", "results"}`` as indented strict JSON."""
    text = json.dumps(to_jsonable(result.to_dict()), indent=2, allow_nan=False)
    return _atomic_write(path, (text + "\n").encode())


def write_csv(result: BenchResult, path: str | os.PathLike) -> Path:
    """One flat row per result (:data:`~unetrt.bench.results.CSV_COLUMNS`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in result.results:
        writer.writerow(flat_row(row))
    return _atomic_write(path, buf.getvalue().encode())


def _num(value: Any, fmt: str = ".2f") -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, fmt)


def _cells(row: dict[str, Any]) -> list[str]:
    lat = row.get("latency_ms") or {}
    speed = row.get("speedup_vs_eager")
    passed = row.get("parity_passed")
    return ["x".join(map(str, row["shape"])), row["backend"], _num(lat.get("p50")), _num(lat.get("p90")),
            _num(lat.get("p99")), f"{_num(lat.get('mean'))} ± {_num(lat.get('std'))}" if lat else "-",
            _num(row.get("throughput_ips"), ".1f"), f"{speed:.2f}x" if speed else "-",
            _num(row.get("peak_memory_mb"), ".0f"), _num(row.get("max_abs_err"), ".2e"),
            _num(row.get("argmax_agreement"), ".4f"), _num(row.get("mean_iou"), ".4f"),
            "-" if passed is None else ("pass" if passed else "FAIL"), row["status"]]


HEADERS = ["shape", "backend", "p50 ms", "p90 ms", "p99 ms", "mean ± std ms", "img/s", "vs eager", "peak MiB",
           "max abs err", "argmax agree", "mean IoU", "parity", "status"]


def _header_lines(result: BenchResult) -> list[str]:
    m, c = result.machine, result.config
    model = c.get("model") or {}
    libs = m.get("libraries") or {}
    gpu = (m.get("gpu") or {}).get("name") or "none"
    timing = c.get("timing") or {}
    length = f"{timing.get('iters')} iterations" if timing.get("iters") else \
        f">= {timing.get('min_seconds')} s and >= {timing.get('min_iters')} iterations"
    return [f"Model: {model.get('arch') or model.get('factory')} {json.dumps(model.get('kwargs'))} "
            f"({model.get('params') or 0:,} params)",
            f"Machine: {m.get('cpu')}, {m.get('usable_cores')} usable cores, GPU: {gpu}; "
            + ", ".join(f"{k} {libs[k]}" for k in ("torch", "onnxruntime", "tensorrt", "tensorrt-rtx") if k in libs),
            f"Threads: {c.get('threads')} (PyTorch and ONNX Runtime intra-op); timing: {timing.get('warmup')} "
            f"warm-up, then {length}; inputs: {'images from ' + str(c['images']) if c.get('images') else 'random'}"
            f" (seed {c.get('seed')}); reference: {c.get('reference')}",
            "Peak memory: " + "; ".join(sorted({r['memory_kind'] for r in result.results if r.get('memory_kind')}))]


def markdown(result: BenchResult) -> str:
    """A Markdown report: header lines and one table row per result."""
    lines = ["# unet-bench", ""] + [f"- {line}" for line in _header_lines(result)] + [""]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "|".join("---" for _ in HEADERS) + "|")
    for row in result.results:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(row)) + " |")
    notes = sorted({n for r in result.results for n in r.get("notes") or []})
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_markdown(result: BenchResult, path: str | os.PathLike) -> Path:
    return _atomic_write(path, markdown(result).encode())


_TERMINAL = ["shape", "backend", "p50 ms", "p99 ms", "img/s", "×eager", "MiB", "max abs", "argmax", "parity"]


def _short(value: Any, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    digits = 0 if abs(value) >= 100 else (1 if abs(value) >= 10 else 2)
    return f"{value:.{digits}f}{suffix}"


def _status_word(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return "[dim]skipped[/]" if row["status"].startswith("skipped") else "[red]failed[/]"
    return {True: "[green]pass[/]", False: "[red]FAIL[/]"}.get(row.get("parity_passed"), "-")


#: A row is flagged noisy when p90 / p50 or p50 / min exceeds this (timings that are not repeatable).
NOISE_RATIO = 1.25


def noisy_rows(result: BenchResult, ratio: float = NOISE_RATIO) -> list[str]:
    """One line per timed row whose spread says the machine was busy (p90/p50 or p50/min above ``ratio``)."""
    out = []
    for row in result.results:
        lat = row.get("latency_ms") or {}
        p50, p90, low = lat.get("p50"), lat.get("p90"), lat.get("min")
        if row["status"] != "ok" or not p50 or not p90 or not low:
            continue
        tail, floor = p90 / p50, p50 / low
        if tail > ratio or floor > ratio:
            out.append(f"{row['backend']} {'x'.join(map(str, row['shape']))}: p90/p50 {tail:.2f}, p50/min {floor:.2f}")
    return out


def rich_table(result: BenchResult):
    """A compact :class:`rich.table.Table` of the results (speedup vs eager per row).

    No column shrinks below its widest cell (rich would cut numbers with an ellipsis on a narrow
    terminal); reasons for skipped, failed or non-passing rows are printed by :func:`render`.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    rows = []
    for row in result.results:
        lat = row.get("latency_ms") or {}
        err, agree = row.get("max_abs_err"), row.get("argmax_agreement")
        rows.append(["x".join(map(str, row["shape"])), row["backend"], _short(lat.get("p50")), _short(lat.get("p99")),
                     _short(row.get("throughput_ips")), _short(row.get("speedup_vs_eager"), "x"),
                     _short(row.get("peak_memory_mb")), "-" if err is None else f"{err:.1e}",
                     "-" if agree is None else f"{agree:.4f}", _status_word(row)])
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for k, h in enumerate(_TERMINAL):
        widest = max([len(h)] + [Text.from_markup(r[k]).cell_len for r in rows])
        table.add_column(h, justify="left" if h in ("shape", "backend") else "right", no_wrap=True,
                         min_width=widest)
    for row, cells in zip(result.results, rows):
        table.add_row(*cells, style=None if row["status"] == "ok" else "dim")
    return table


def render(result: BenchResult, console) -> None:
    """Print the header lines, the table, why rows were skipped, failed or missed parity, and a
    warning when a row's spread says the timings are noisy."""
    for line in _header_lines(result):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    table = rich_table(result)
    natural = console.measure(table).maximum  # wider than a narrow terminal: overflow, never cut a number
    console.print(table, width=max(console.width, natural), crop=False)
    reasons: dict[str, list[str]] = {}
    for row in result.results:
        why = row["status"] if row["status"] != "ok" else (
            f"parity: {row['parity_reason']}" if row.get("parity_passed") is False else None)
        if why:
            reasons.setdefault(f"{row['backend']}: {why}", []).append("x".join(map(str, row["shape"])))
    for why, shapes in reasons.items():
        console.print(f"  {why} ({', '.join(shapes)})", markup=False, highlight=False, soft_wrap=True)
    noisy = noisy_rows(result)
    if noisy:
        console.print(f"warning: noisy timings (spread above {NOISE_RATIO:g}x; the machine was busy or throttling, "
                      "compare ratios from one run, rerun with a longer --min-seconds on an idle machine): "
                      + "; ".join(noisy), style="yellow", markup=False, highlight=False, soft_wrap=True)


def require_matplotlib():
    """matplotlib's ``Figure`` class (no pyplot, no global backend change).

    Raises:
        MissingDependencyError: matplotlib is not installed (names the ``bench`` extra).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("plots need matplotlib, which is not installed", "matplotlib",
                                     "pip install 'unetrt[bench]' (or drop --plot)") from None
    return Figure


def write_plot(result: BenchResult, path: str | os.PathLike) -> Path:
    """PNG: p50 latency vs resolution per backend and batch (log scale), and speedup-vs-eager bars."""
    figure_cls = require_matplotlib()
    ok = [r for r in result.results if r["status"] == "ok" and r.get("latency_ms")]
    fig = figure_cls(figsize=(13, 5), layout="constrained")
    lat_ax, bar_ax = fig.subplots(1, 2)
    sizes = sorted({(r["height"], r["width"]) for r in ok}, key=lambda hw: hw[0] * hw[1])
    backends = list(dict.fromkeys(r["backend"] for r in result.results))
    batches = sorted({r["batch"] for r in ok})
    styles = ["-", "--", ":", "-."]
    for i, backend in enumerate(backends):
        for j, batch in enumerate(batches):
            pts = sorted((r["height"] * r["width"], r["latency_ms"]["p50"]) for r in ok
                         if r["backend"] == backend and r["batch"] == batch)
            if pts:
                lat_ax.plot([p[0] for p in pts], [p[1] for p in pts], styles[j % 4], marker="o", color=f"C{i}",
                            label=f"{backend} (batch {batch})")
    lat_ax.set(xscale="log", yscale="log", xlabel="input size (H x W)", ylabel="p50 latency (ms)",
               title="Latency vs resolution")
    lat_ax.set_xticks([h * w for h, w in sizes], [f"{h}x{w}" for h, w in sizes])
    lat_ax.minorticks_off()
    if ok:
        lat_ax.legend(fontsize="small")
    shapes = list(dict.fromkeys(tuple(r["shape"]) for r in ok))
    others = [b for b in backends if b != "eager" and any(r["backend"] == b and r["speedup_vs_eager"] for r in ok)]
    width = 0.8 / max(1, len(others))
    for i, backend in enumerate(others):
        speed = {tuple(r["shape"]): r["speedup_vs_eager"] for r in ok if r["backend"] == backend}
        xs = [k + i * width for k, s in enumerate(shapes) if speed.get(s)]
        bar_ax.bar(xs, [speed[s] for s in shapes if speed.get(s)], width, label=backend,
                   color=f"C{backends.index(backend)}")
    bar_ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    bar_ax.set_xticks([k + 0.4 - width / 2 for k in range(len(shapes))], ["x".join(map(str, s)) for s in shapes],
                      rotation=30, ha="right", fontsize="small")
    bar_ax.set(ylabel="speedup vs eager (p50)", title="Speedup vs eager")
    if others and ok:
        bar_ax.legend(fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return _atomic_write(path, buf.getvalue())


def write_reports(result: BenchResult, *, json_path=None, csv_path=None, markdown_path=None,
                  plot_path=None) -> list[Path]:
    """Write every report whose path is given; returns the written paths."""
    writers = ((json_path, write_json), (csv_path, write_csv), (markdown_path, write_markdown),
               (plot_path, write_plot))
    return [writer(result, path) for path, writer in writers if path]
