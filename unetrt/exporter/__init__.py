"""PyTorch → ONNX (→ FP16 → TensorRT) export. Public API: the config, the chain and its options."""

from .pipeline import ExportConfig, ExportResult, export
from .steps import EngineOptions

__all__ = ["ExportConfig", "ExportResult", "EngineOptions", "export"]
