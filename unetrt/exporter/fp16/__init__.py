"""FP16 ONNX: the conversion (:mod:`.convert`), its FP32-node search (:mod:`.search`) and the export stage
(:mod:`.stage`)."""

from .convert import Fp16Result, convert_fp16

__all__ = ["Fp16Result", "convert_fp16"]
