"""PyTorch → ONNX (→ FP16/INT8 → TensorRT) export. Public API: the config and its option groups, the chain."""

from .config import EngineOptions, ExportConfig, Fp16Options, Int8Options, VerifyOptions
from .pipeline import ExportResult, export

__all__ = ["ExportConfig", "ExportResult", "EngineOptions", "Fp16Options", "Int8Options", "VerifyOptions", "export"]
