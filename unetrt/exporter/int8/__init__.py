"""INT8 ONNX: Q/DQ quantization (:mod:`.quantize`, :mod:`.quantizers`), the structure check (:mod:`.qdq`),
the accuracy search (:mod:`.search`), calibration inputs (:mod:`.calib`) and the export stages (:mod:`.stage`)."""

from .qdq import check_qdq
from .quantize import METHODS, Int8Result, quantize_int8

__all__ = ["METHODS", "Int8Result", "check_qdq", "quantize_int8"]
