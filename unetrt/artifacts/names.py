"""File and tensor names of an export directory: the one place they are spelled."""

from __future__ import annotations

__all__ = ["MANIFEST", "ONNX", "ONNX_FP16", "ONNX_INT8", "ONNX_INT8_CPU", "ONNX_LABELS", "INPUT", "OUTPUT", "LABELS", "LOCK",
           "engine_name", "artifact_name", "FILES", "PRECISIONS"]

MANIFEST = "manifest.json"
ONNX = "model.onnx"
ONNX_FP16 = "model_fp16.onnx"
ONNX_INT8 = "model_int8.onnx"
ONNX_INT8_CPU = "model_int8_cpu.onnx"
#: The FP32 graph with the post-processing appended (ArgMax / threshold, uint8 labels out).
ONNX_LABELS = "model_labels.onnx"
#: Input and output tensor names of every exported graph and engine.
INPUT = "input"
OUTPUT = "logits"
#: Output tensor of the labels form (``Nx1xHxW`` uint8 class indices).
LABELS = "labels"
#: Lock file held in the parent directory while an export writes into a target.
LOCK = ".unetrt-export.lock"
#: Precisions an artifact can have, in the order a CPU prefers them.
PRECISIONS = ("fp32", "fp16", "int8")


#: ``(kind, precision, form) -> file name`` of every artifact an export can hold (see
#: :class:`unetrt.artifacts.refs.ArtifactRef`); a new artifact gets its line here.
FILES = {
    ("onnx", "fp32", ""): ONNX,
    ("onnx", "fp16", ""): ONNX_FP16,
    ("onnx", "int8", ""): ONNX_INT8,
    ("onnx", "int8", "cpu"): ONNX_INT8_CPU,
    ("onnx", "fp32", "labels"): ONNX_LABELS,
    ("engine", "fp32", ""): "model.engine",
    ("engine", "fp16", ""): "model_fp16.engine",
    ("engine", "int8", ""): "model_int8.engine",
}


def artifact_name(kind: str, precision: str, form: str = "") -> str | None:
    """The file of an artifact (``None`` when no such artifact is named)."""
    return FILES.get((kind, precision, form))


def engine_name(precision: str) -> str:
    """The engine file of a precision: ``model.engine``, ``model_fp16.engine`` or ``model_int8.engine``."""
    return FILES[("engine", precision, "")]
