"""Helpers behind :func:`unetrt.exporter.trt_builder.build_engine` (private): logging, progress, parser
errors, network I/O and atomic file writes. Nothing here compares TensorRT versions."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..artifacts.dtypes import trt_dtype_name
from ..artifacts.trt import probe_gpu_cc
from ..errors import Terminated

if TYPE_CHECKING:
    import tensorrt

log = logging.getLogger("unetrt.exporter.trt_builder")


def network_io(trt: object, network: "tensorrt.INetworkDefinition") -> list[dict]:
    """Inputs and outputs of the parsed network: name, mode, dtype and shape (-1 = dynamic)."""
    tensors = [("input", network.get_input(i)) for i in range(network.num_inputs)]
    tensors += [("output", network.get_output(i)) for i in range(network.num_outputs)]
    return [{"name": t.name, "mode": mode, "dtype": trt_dtype_name(t.dtype),
             "shape": [int(t.shape[i]) for i in range(len(t.shape))]} for mode, t in tensors]


def parser_errors(parser: "tensorrt.OnnxParser", onnx_path: str) -> str:
    """One line naming the first parser errors with node name and op type."""
    parts = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        where = f"node {err.node_name()!r} ({err.node_operator()})" if err.node_name() else "model"
        parts.append(f"{where}: {' '.join(err.desc().split())}")
    more = f" (+{len(parts) - 3} more)" if len(parts) > 3 else ""
    return f"TensorRT could not parse {onnx_path}: " + "; ".join(parts[:3]) + more


def make_monitor(trt, progress: Callable | None, logger):
    """A trt.IProgressMonitor that forwards to ``progress(phase, step, total)`` and aborts the build when
    it returns False (``aborted``), raises (``error``), on Ctrl-C (``interrupted``, also from ``logger``)
    or when :func:`signals_stop_build` recorded SIGINT/SIGTERM (``signal``).
    """

    class _Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.totals: dict[str, int] = {}
            self.aborted = self.interrupted = False
            self.error: Exception | None = None
            self.signal: int | None = None

        def _stop(self) -> bool:
            self.interrupted = self.interrupted or logger.interrupted
            return self.aborted or self.interrupted or self.error is not None or self.signal is not None

        def phase_start(self, phase_name, parent_phase, num_steps):
            try:
                self.totals[phase_name] = num_steps
            except KeyboardInterrupt:
                self.interrupted = True

        def step_complete(self, phase_name, step):
            try:
                if progress is not None and progress(phase_name, step + 1, self.totals.get(phase_name, 0)) is False:
                    self.aborted = True
            except KeyboardInterrupt:
                self.interrupted = True
            except Exception as exc:  # a failing callback must not unwind through TensorRT
                self.error = exc
            return not self._stop()

        def phase_finish(self, phase_name):
            try:
                self.totals.pop(phase_name, None)
            except KeyboardInterrupt:
                self.interrupted = True

    return _Monitor()


@contextlib.contextmanager
def signals_stop_build(monitor) -> Iterator[None]:
    """While TensorRT builds, SIGINT and SIGTERM only record themselves in ``monitor.signal``: the monitor
    then returns False at the builder's next step, which aborts the build cleanly (an exception raised in
    a TensorRT callback would be swallowed by its C++ frames). Afterwards :func:`raise_signal` turns the
    recorded signal into Ctrl-C or :class:`~unetrt.errors.Terminated`. Main thread only; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def record(signum, frame):
        monitor.signal = signum

    previous = {s: signal.signal(s, record) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def raise_signal(monitor) -> None:
    """Re-raise a signal :func:`signals_stop_build` recorded: SIGINT as KeyboardInterrupt, SIGTERM as Terminated."""
    if monitor.signal == signal.SIGINT:
        raise KeyboardInterrupt
    if monitor.signal is not None:
        raise Terminated(f"terminated by signal {monitor.signal} during the engine build")


def load_timing_cache(config: "tensorrt.IBuilderConfig", path: str) -> tuple[object | None, str | None]:
    """Give the config a timing cache read from ``path`` (empty when absent); TensorRT only.

    Returns:
        ``(cache, note)``: the cache TensorRT accepted (saved back after the build), or ``None`` with a
        note when ``set_timing_cache`` refused it (a cache made on another device): it is ignored and
        the file is left as it is.
    """
    data = b""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            data = f.read()
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s: cache from another device, ignored", path)
        return None, f"timing cache {os.path.basename(path)}: cache from another device, ignored"
    return cache, None


def build_gpu() -> dict | None:
    """Name and compute capability of the CUDA GPU this process builds on (``None`` without one)."""
    cc = probe_gpu_cc()
    if cc is None:
        return None
    import torch

    return {"name": torch.cuda.get_device_name(0), "compute_capability": f"{cc[0]}.{cc[1]}"}


def runs_on(targets: list[str] | None, gpu: dict | None) -> list[str] | None:
    """The GPUs a plan runs on: RTX targets (CURRENT resolved), else the build GPU."""
    here = None
    if gpu:
        major, minor = gpu["compute_capability"].split(".")
        here = f"SM{major}{minor}"
    if targets is None:
        return [here] if here else None
    resolved = [here if t == "CURRENT" else t for t in targets]
    return [t for t in resolved if t] or None
