"""One ONNX Runtime session builder for the exporter's checks and the runtime's runner."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..errors import MissingDependencyError

__all__ = ["LEVELS", "import_onnxruntime", "make_session"]

#: Our graph-optimisation level names -> ``ort.GraphOptimizationLevel`` members.
LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
          "all": "ORT_ENABLE_ALL"}


def import_onnxruntime() -> Any:
    """``import onnxruntime``, or a :class:`MissingDependencyError` naming what to install."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(f"onnxruntime cannot be imported ({exc})", "onnxruntime or onnxruntime-gpu",
                                     "pip install 'unetrt[cpu]' (CPU onnxruntime) or 'unetrt[gpu]' (onnxruntime-gpu), not both") from None
    return onnxruntime


def make_session(model: str | os.PathLike | bytes, providers: Sequence[Any] = ("CPUExecutionProvider",), *,
                 threads: int | None = None, level: str = "all", quiet: bool = True) -> Any:
    """An ``onnxruntime.InferenceSession``.

    Args:
        model: An ONNX file path or serialized model bytes.
        providers: ORT provider names, or ``(name, options)`` pairs, in priority order.
        threads: Intra-op threads (``None``: ONNX Runtime's default).
        level: Graph optimisation: ``disable``, ``basic``, ``extended`` or ``all``.
        quiet: Log errors only.
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    if threads:
        options.intra_op_num_threads = threads
    if quiet:
        options.log_severity_level = 3
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, options, providers=list(providers))
