"""File and tensor names of an export directory: the one place they are spelled."""

from __future__ import annotations

__all__ = ["MANIFEST", "ONNX", "ONNX_FP16", "ONNX_INT8", "ONNX_INT8_CPU", "INPUT", "OUTPUT", "LOCK", "onnx_name",
           "engine_name", "PRECISIONS"]

MANIFEST = "manifest.json"
ONNX = "model.onnx"
ONNX_FP16 = "model_fp16.onnx"
ONNX_INT8 = "model_int8.onnx"
ONNX_INT8_CPU = "model_int8_cpu.onnx"
#: Input and output tensor names of every exported graph and engine.
INPUT = "input"
OUTPUT = "logits"
#: Lock file held in the parent directory while an export writes into a target.
LOCK = ".unetrt-export.lock"
#: Precisions an artifact can have, in the order a CPU prefers them.
PRECISIONS = ("fp32", "fp16", "int8")


def onnx_name(precision: str) -> str:
    """The ONNX file of a precision: ``model.onnx``, ``model_fp16.onnx`` or ``model_int8.onnx``."""
    return {"fp32": ONNX, "fp16": ONNX_FP16, "int8": ONNX_INT8, "int8-cpu": ONNX_INT8_CPU}[precision]


def engine_name(precision: str) -> str:
    """The engine file of a precision: ``model.engine``, ``model_fp16.engine`` or ``model_int8.engine``."""
    return {"fp32": "model.engine", "fp16": "model_fp16.engine", "int8": "model_int8.engine"}[precision]
