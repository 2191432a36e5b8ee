"""Benchmark results as data: one row per (backend, shape), plus the machine and the configuration.

Every row has every field; what does not apply (a skipped backend's latency) is ``None``.
``status`` is ``"ok"``, ``"skipped: <reason>"`` or ``"failed: <reason>"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .parity import PARITY_FIELDS
from .timing import TimingStats

__all__ = ["BenchResult", "new_row", "set_timing", "add_speedups", "flat_row", "CSV_COLUMNS", "LATENCY_KEYS"]

LATENCY_KEYS = ("p50", "p90", "p99", "mean", "std", "min", "max")
_PARITY = (*PARITY_FIELDS, "min_argmax_agreement", "parity_passed", "parity_reason", "output_shape")

#: Flat column order of the CSV (``shape`` as ``NxCxHxW``, latencies as ``latency_<key>_ms``).
CSV_COLUMNS = ("backend", "family", "precision", "device", "status", "shape", "batch", "height", "width",
               *(f"latency_{k}_ms" for k in LATENCY_KEYS), "iterations", "throughput_ips", "speedup_vs_eager",
               "peak_memory_mb", "memory_kind", "transfers_included", "threads", *PARITY_FIELDS,
               "min_argmax_agreement", "parity_passed", "parity_reason", "output_shape", "notes")


def new_row(backend, shape: tuple[int, int, int, int], *, device: str, threads: int | None,
            status: str = "ok") -> dict[str, Any]:
    """An empty row for ``backend`` (a :class:`~unetrt.bench.backends.Backend`) at ``shape``."""
    row: dict[str, Any] = {
        "backend": backend.name, "family": backend.family, "precision": backend.precision, "device": device,
        "status": status, "shape": [int(d) for d in shape], "batch": int(shape[0]), "height": int(shape[-2]),
        "width": int(shape[-1]), **({"depth": int(shape[2])} if len(shape) == 5 else {}), "latency_ms": None, "iterations": None, "throughput_ips": None,
        "speedup_vs_eager": None, "peak_memory_mb": None, "memory_kind": None, "transfers_included": None,
        "threads": threads,
    }
    row.update({k: None for k in _PARITY})
    row["notes"] = []
    return row


def set_timing(row: dict[str, Any], stats: TimingStats) -> None:
    """Fill the latency, iteration count and throughput of ``row``."""
    row["latency_ms"] = stats.latency_ms()
    row["iterations"] = stats.count
    row["throughput_ips"] = stats.throughput_ips


def add_speedups(rows: list[dict[str, Any]], reference: str = "eager") -> None:
    """``speedup_vs_eager = eager p50 / row p50`` for every ok row whose shape has an ok eager row."""
    base = {tuple(r["shape"]): r["latency_ms"]["p50"] for r in rows
            if r["backend"] == reference and r["status"] == "ok" and r["latency_ms"]}
    for r in rows:
        p50 = base.get(tuple(r["shape"]))
        if r["status"] == "ok" and r["latency_ms"] and p50 and r["latency_ms"]["p50"] > 0:
            r["speedup_vs_eager"] = p50 / r["latency_ms"]["p50"]
        else:
            r["speedup_vs_eager"] = None


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value)) if all(isinstance(v, int) for v in value) else "; ".join(map(str, value))
    return value


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with scalar cells only, keyed by :data:`CSV_COLUMNS`."""
    flat = {k: _cell(row.get(k)) for k in CSV_COLUMNS if k in row}
    latency = row.get("latency_ms") or {}
    for key in LATENCY_KEYS:
        flat[f"latency_{key}_ms"] = _cell(latency.get(key))
    return {k: flat.get(k, "") for k in CSV_COLUMNS}


@dataclass
class BenchResult:
    """A benchmark run: ``machine`` facts, the ``config`` it ran with, and ``results`` rows."""

    machine: dict[str, Any]
    config: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "config": self.config, "results": self.results}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchResult":
        return cls(dict(data["machine"]), dict(data["config"]), list(data["results"]))

    def rows(self, backend: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Rows of one backend and/or status prefix (``"ok"``, ``"skipped"``, ``"failed"``)."""
        return [r for r in self.results if (backend is None or r["backend"] == backend)
                and (status is None or r["status"].startswith(status))]

    @property
    def all_passed(self) -> bool:
        """Every ok row passed parity (skipped rows do not count; failed rows do)."""
        return all(r["parity_passed"] for r in self.results if not r["status"].startswith("skipped"))
