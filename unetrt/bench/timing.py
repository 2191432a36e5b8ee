"""Latency measurement: warm-up, then a fixed count or a minimum duration, and the statistics.

The timed step is any callable. On CPU it is timed with :func:`time.perf_counter`; for GPU work
pass ``sync`` (e.g. ``torch.cuda.synchronize``), which is called before the clock starts and
before it stops, so queued kernels are always inside the measured interval.

:func:`measure_device` times a prepared GPU step (buffers bound once, no copies) the way trtexec
does: GPU compute time from CUDA events recorded on the runner's own stream around each enqueue, and
end-to-end host time (enqueue + wait for the end event) for the same iterations.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from ..errors import UnetrtError

__all__ = ["TimingPlan", "TimingStats", "DeviceTiming", "measure", "measure_device", "DEFAULT_MIN_SECONDS"]

#: Measurement length when neither an iteration count nor a duration is given.
DEFAULT_MIN_SECONDS = 2.0
#: Duration mode stops after this many iterations even if the clock has not advanced enough.
MAX_ITERATIONS = 100_000


@dataclass(frozen=True)
class TimingPlan:
    """How long to measure.

    Attributes:
        warmup: Untimed iterations first (lazy initialisation, allocator growth, autotuning).
        iters: Exactly this many timed iterations (fixed-count mode).
        min_seconds: Keep timing until this much wall time has passed and at least ``min_iters``
            iterations ran (duration mode). ``iters`` and ``min_seconds`` exclude each other;
            with neither, duration mode with :data:`DEFAULT_MIN_SECONDS`.
        min_iters: Fewest timed iterations in duration mode.
    """

    warmup: int = 3
    iters: int | None = None
    min_seconds: float | None = None
    min_iters: int = 3

    def __post_init__(self):
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise UnetrtError(f"--warmup {self.warmup}", "a whole number of iterations >= 0", "e.g. --warmup 3")
        if self.iters is not None and self.min_seconds is not None:
            raise UnetrtError(f"both --iters {self.iters} and --min-seconds {self.min_seconds} given",
                              "a fixed count or a minimum duration, not both", "drop one of them")
        if self.iters is not None and (isinstance(self.iters, bool) or not isinstance(self.iters, int)
                                       or self.iters < 1):
            raise UnetrtError(f"--iters {self.iters}", "a positive number of timed iterations", "e.g. --iters 20")
        if self.min_seconds is not None and not (self.min_seconds > 0 and math.isfinite(self.min_seconds)):
            raise UnetrtError(f"--min-seconds {self.min_seconds}", "a positive, finite duration in seconds",
                              "e.g. --min-seconds 2")
        if self.min_iters < 1:
            raise UnetrtError(f"min_iters {self.min_iters}", "at least 1", "fix min_iters")

    @property
    def duration(self) -> float | None:
        """The minimum duration in seconds, or ``None`` in fixed-count mode."""
        if self.iters is not None:
            return None
        return self.min_seconds if self.min_seconds is not None else DEFAULT_MIN_SECONDS

    def to_dict(self) -> dict[str, Any]:
        return {"warmup": self.warmup, "iters": self.iters, "min_seconds": self.duration,
                "min_iters": self.min_iters if self.iters is None else None,
                "mode": "fixed count" if self.iters is not None else "minimum duration"}


@dataclass(frozen=True)
class TimingStats:
    """Latency statistics over the timed iterations (milliseconds) and the throughput they imply.

    Percentiles use numpy's default linear interpolation; ``std`` is the population standard
    deviation.
    """

    count: int
    batch: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    total_s: float

    @classmethod
    def from_samples(cls, seconds: list[float] | np.ndarray, batch: int = 1) -> "TimingStats":
        """Statistics of per-iteration durations given in seconds."""
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        if ms.size == 0:
            raise UnetrtError("no timed iterations", "at least one", "raise --iters or --min-seconds")
        p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
        return cls(count=int(ms.size), batch=int(batch), p50=p50, p90=p90, p99=p99, mean=float(ms.mean()),
                   std=float(ms.std()), min=float(ms.min()), max=float(ms.max()), total_s=float(ms.sum() / 1e3))

    @property
    def throughput_ips(self) -> float:
        """Images per second: batch size over the mean latency."""
        return self.batch * 1e3 / self.mean if self.mean > 0 else float("inf")

    def latency_ms(self) -> dict[str, float]:
        """``{p50, p90, p99, mean, std, min, max}`` in milliseconds."""
        return {k: v for k, v in asdict(self).items() if k in ("p50", "p90", "p99", "mean", "std", "min", "max")}


def measure(step: Callable[[], Any], plan: TimingPlan | None = None, *, batch: int = 1,
            clock: Callable[[], float] | None = None, sync: Callable[[], Any] | None = None) -> TimingStats:
    """Time ``step`` according to ``plan``.

    Args:
        step: One inference (the callable's result is ignored).
        plan: Warm-up and length; default :class:`TimingPlan()`.
        batch: Images per step (for the throughput).
        clock: Seconds as a float; default :func:`time.perf_counter` (injectable for tests).
        sync: Called before starting and before stopping the clock (GPU: ``torch.cuda.synchronize``).

    Returns:
        The statistics of the timed iterations (warm-up excluded).
    """
    plan = plan or TimingPlan()
    clock = clock or time.perf_counter
    sync = sync or (lambda: None)
    for _ in range(plan.warmup):
        step()
    samples: list[float] = []
    duration = plan.duration
    begin = clock()
    while True:
        sync()
        start = clock()
        step()
        sync()
        samples.append(clock() - start)
        if duration is None:
            if len(samples) >= (plan.iters or 1):
                break
        elif (clock() - begin >= duration and len(samples) >= plan.min_iters) or len(samples) >= MAX_ITERATIONS:
            break
    return TimingStats.from_samples(samples, batch)


@dataclass(frozen=True)
class DeviceTiming:
    """What :func:`measure_device` measured.

    Attributes:
        gpu: GPU compute time per run (CUDA events on the step's stream).
        end_to_end: Host time per run: enqueue until the end event completed.
        warmup: Untimed runs actually done (at least the step's ``min_warmup``).
    """

    gpu: TimingStats
    end_to_end: TimingStats
    warmup: int


def measure_device(step: Any, plan: TimingPlan | None = None, *, batch: int = 1,
                   clock: Callable[[], float] | None = None) -> DeviceTiming:
    """Time a :class:`~unetrt.runtime.cuda_device.DeviceStep` with events on its stream.

    Args:
        step: The prepared step (``run``, ``stream``, ``events``, ``min_warmup``).
        plan: Warm-up and length (the warm-up is raised to ``step.min_warmup``, e.g. for TensorRT-RTX's
            lazily specialised kernels).
        batch: Images per run.
        clock: Host clock (injectable for tests).

    Returns:
        GPU compute and end-to-end statistics over the same timed runs.
    """
    plan = plan or TimingPlan()
    clock = clock or time.perf_counter
    warmup = max(plan.warmup, int(getattr(step, "min_warmup", 1) or 0))
    start, end = step.events()
    for _ in range(warmup):
        step.run()
    end.record(step.stream)
    end.synchronize()
    gpu: list[float] = []
    host: list[float] = []
    duration = plan.duration
    begin = clock()
    while True:
        t0 = clock()
        start.record(step.stream)
        step.run()
        end.record(step.stream)
        end.synchronize()
        host.append(clock() - t0)
        gpu.append(start.elapsed_time(end) / 1e3)
        if duration is None:
            if len(gpu) >= (plan.iters or 1):
                break
        elif (clock() - begin >= duration and len(gpu) >= plan.min_iters) or len(gpu) >= MAX_ITERATIONS:
            break
    return DeviceTiming(TimingStats.from_samples(gpu, batch), TimingStats.from_samples(host, batch), warmup)
