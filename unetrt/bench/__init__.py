"""Benchmark harness: latency and numeric parity vs eager PyTorch across backends, sizes and batches.

Example::

    from unetrt.bench import BenchConfig, TimingPlan, run_grid, write_reports
    result = run_grid(BenchConfig(arch="milesial", model_kwargs={"width": 64}, sizes="256,512",
                                  batches="1,4", backends="eager,ort,ort-fp16", timing=TimingPlan(iters=20)))
    write_reports(result, json_path="bench.json", markdown_path="bench.md")
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "ArtifactCache": "artifacts", "ModelSource": "artifacts", "BACKENDS": "backends", "Backend": "backends",
    "parse_backends": "backends", "unavailable_reason": "backends", "BenchConfig": "config", "run_grid": "grid",
    "PeakMemory": "machine", "default_threads": "machine", "machine_info": "machine", "TOLERANCES": "parity",
    "parity_row": "parity", "markdown": "report", "rich_table": "report", "write_csv": "report",
    "write_json": "report", "write_markdown": "report", "write_plot": "report", "write_reports": "report",
    "BenchResult": "results", "TimingPlan": "timing", "TimingStats": "timing", "measure": "timing",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
