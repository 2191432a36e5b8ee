"""Benchmark harness: latency and numeric parity vs eager PyTorch across backends, sizes and batches.

Example::

    from unetrt.bench import BenchConfig, TimingPlan, run_grid, write_reports
    result = run_grid(BenchConfig(arch="milesial", model_kwargs={"width": 64}, sizes="256,512",
                                  batches="1,4", backends="eager,ort,ort-fp16", timing=TimingPlan(iters=20)))
    write_reports(result, json_path="bench.json", markdown_path="bench.md")
"""

from .artifacts import ArtifactCache, ModelSource
from .backends import BACKENDS, Backend, parse_backends, unavailable_reason
from .config import BenchConfig
from .grid import run_grid
from .machine import PeakMemory, default_threads, machine_info
from .parity import TOLERANCES, parity_row
from .report import markdown, rich_table, write_csv, write_json, write_markdown, write_plot, write_reports
from .results import BenchResult
from .timing import TimingPlan, TimingStats, measure

__all__ = ["BenchConfig", "run_grid", "BenchResult", "TimingPlan", "TimingStats", "measure", "BACKENDS",
           "Backend", "parse_backends", "unavailable_reason", "ArtifactCache", "ModelSource", "PeakMemory",
           "default_threads", "machine_info", "TOLERANCES", "parity_row", "markdown", "rich_table",
           "write_json", "write_csv", "write_markdown", "write_plot", "write_reports"]
