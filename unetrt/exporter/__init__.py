"""PyTorch → ONNX (→ FP16 → TensorRT) export."""

from .pipeline import ExportConfig, ExportResult, export

__all__ = ["ExportConfig", "ExportResult", "export"]
