"""Runners: one inference API over eager PyTorch, ONNX Runtime and TensorRT."""
