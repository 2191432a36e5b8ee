"""Runners: one inference API over eager PyTorch, ONNX Runtime and TensorRT, plus image pre/post-processing
and tiled inference.

``import unetrt.runtime`` needs neither TensorRT nor a GPU, and imports nothing heavy until a name is
used: backends import their libraries when a runner is activated.

Example::

    from unetrt.runtime import load
    with load("export/milesial") as runner:          # engine on a GPU, else ONNX Runtime
        logits = runner.infer({"input": x})["logits"]
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Runner": "base", "TensorMeta": "base", "InputConstraint": "base", "load": "loader",
    "TorchRunner": "pyt", "OrtRunner": "ort", "TrtRunner": "trt", "overlap_tile": "tiling",
    "sliding_window": "tiling", "preprocess": "transforms", "postprocess": "transforms",
    "mask_to_image": "transforms", "align_pad": "transforms", "crop": "transforms",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'unetrt.runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
