"""Runners: one inference API over eager PyTorch, ONNX Runtime and TensorRT, plus image pre/post-processing
and tiled inference.

``import unetrt.runtime`` needs neither TensorRT nor a GPU: backends import their libraries when a
runner is activated.

Example::

    from unetrt.runtime import load
    with load("export/milesial") as runner:          # engine on a GPU, else ONNX Runtime
        logits = runner.infer({"input": x})["logits"]
"""

from .base import InputConstraint, Runner, TensorMeta
from .loader import load
from .ort import OrtRunner
from .tiling import overlap_tile, sliding_window
from .pyt import TorchRunner
from .transforms import align_pad, crop, mask_to_image, postprocess, preprocess
from .trt import TrtRunner

__all__ = ["Runner", "TensorMeta", "InputConstraint", "load", "TorchRunner", "OrtRunner", "TrtRunner",
           "preprocess", "postprocess", "mask_to_image", "align_pad", "crop", "overlap_tile", "sliding_window"]
