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

from .._lazy import lazy_exports

_EXPORTS = {
    "Runner": "base", "TensorMeta": "base", "InputConstraint": "base", "load": "loader",
    "TorchRunner": "pyt", "OrtRunner": "ort", "TrtRunner": "trt", "overlap_tile": "tiling",
    "sliding_window": "tiling", "preprocess": "transforms", "postprocess": "transforms",
    "mask_to_image": "masks", "align_pad": "transforms", "crop": "transforms",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
