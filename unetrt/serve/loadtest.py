"""A closed-loop load test: N client threads, each sending requests back to back.

The same loop drives a Triton server (HTTP or gRPC, one client connection per thread) and an
in-process runner (one runner shared by the threads, like one server model instance), so the
serving overhead is a ratio measured side by side.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ServeError

InferFn = Callable[[np.ndarray], Any]


@dataclass
class LoadResult:
    """One load level: throughput, latency percentiles and errors."""

    label: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    throughput_rps: float
    latency_ms: dict[str, float]
    error_samples: list[str] = field(default_factory=list)
    outputs: list[tuple[int, Any]] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("outputs")
        return data


def percentiles(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/max in milliseconds (numpy's linear interpolation)."""
    if not latencies_s:
        return {}
    ms = np.asarray(latencies_s) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3),
            "mean": round(float(ms.mean()), 3), "max": round(float(ms.max()), 3)}


def run_load(make_infer: Callable[[], InferFn], inputs: Sequence[np.ndarray], *, concurrency: int,
             requests_per_worker: int, warmup: int = 2, label: str = "", collect: bool = False,
             close: Callable[[InferFn], None] | None = None) -> LoadResult:
    """Run ``concurrency`` threads of ``requests_per_worker`` requests each.

    Args:
        make_infer: Called once per thread (before timing) for that thread's ``infer(x)``.
        inputs: Request payloads; worker ``w`` sends ``inputs[(w + i) % len(inputs)]`` as request ``i``.
        concurrency: Client threads.
        requests_per_worker: Timed requests per thread.
        warmup: Untimed requests per thread first.
        label: Name in reports.
        collect: Keep ``(input index, output)`` of every successful request in ``outputs``.
        close: Called with each thread's ``infer`` afterwards (e.g. to close its connection).

    Returns:
        A :class:`LoadResult`; errors are counted (first 5 messages kept), never raised.
    """
    if concurrency < 1 or requests_per_worker < 1 or not inputs:
        raise ServeError(f"concurrency={concurrency}, requests_per_worker={requests_per_worker}, "
                         f"{len(inputs)} input(s)", "positive counts and at least one input", "fix the arguments")
    latencies: list[float] = []
    errors: list[str] = []
    outputs: list[tuple[int, Any]] = []
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    ready = threading.Barrier(concurrency)

    def worker(w: int) -> None:
        infer = None
        try:
            infer = make_infer()
            for i in range(warmup):
                infer(inputs[(w + i) % len(inputs)])
        except Exception as exc:  # noqa: BLE001 - a failed worker is an error count, not a crash
            with lock:
                errors.append(f"setup: {exc}")
        ready.wait()
        began = time.perf_counter()
        mine, done = [], []
        for i in range(requests_per_worker if infer else 0):
            k = (w + i) % len(inputs)
            t = time.perf_counter()
            try:
                y = infer(inputs[k])
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(str(exc))
                continue
            mine.append(time.perf_counter() - t)
            if collect:
                done.append((k, y))
        ended = time.perf_counter()
        with lock:
            latencies.extend(mine)
            outputs.extend(done)
            spans.append((began, ended))
        if close and infer:
            close(infer)

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = max(e for _, e in spans) - min(b for b, _ in spans)  # first timed start to last end
    total = concurrency * requests_per_worker
    return LoadResult(label, concurrency, total, total - len(latencies), round(seconds, 4), round(len(latencies) / seconds, 3) if seconds > 0 else 0.0,
                      percentiles(latencies), errors[:5], outputs if collect else None)


def triton_infer(url: str, model: str) -> tuple[Callable[[], InferFn], Callable[[InferFn], None]]:
    """``(make_infer, close)`` for :func:`run_load` against a Triton model (one connection per thread)."""
    from .client import TritonClient

    from .client import NUMPY_DTYPES

    with TritonClient(url) as probe:
        config = probe.model_config(model)
    name_in, out = config["input"][0]["name"], config["output"][0]
    name_out = out["name"]
    dtype = NUMPY_DTYPES.get(out["data_type"], out["data_type"])
    dims = [int(d) for d in out.get("dims", [])]
    batched = int(config.get("max_batch_size", 0)) > 0

    def check(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The response must be an output of the model's config for this input: dtype, rank, fixed dims,
        the request's batch size, and finite values."""
        expected = ([int(x.shape[0])] if batched else []) + dims
        shape = list(y.shape)
        if (y.dtype.name != dtype or len(shape) != len(expected)
                or any(e not in (-1, g) for e, g in zip(expected, shape))):
            raise ServeError(f"{model} answered {name_out} {y.dtype.name} {shape}", f"{dtype} {expected}",
                             "check the model's config and the served model")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ServeError(f"{model} answered {name_out} with NaN or Inf values", "finite values",
                             "check the served model")
        return y

    def make() -> InferFn:
        client = TritonClient(url)

        def infer(x: np.ndarray) -> np.ndarray:
            return check(x, client.infer(model, {name_in: x}, [name_out])[name_out])

        infer.client = client  # type: ignore[attr-defined]
        return infer

    return make, lambda infer: infer.client.close()  # type: ignore[attr-defined]


def runner_infer(runner) -> Callable[[], InferFn]:
    """``make_infer`` for :func:`run_load` over one active in-process runner shared by every thread."""
    name_in = next(iter(runner.input_constraints))
    name_out = next(iter(runner.output_metadata))
    return lambda: (lambda x: runner.infer({name_in: x})[name_out])
