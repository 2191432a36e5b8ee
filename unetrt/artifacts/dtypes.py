"""Dtype names of each framework -> numpy-style names, the one spelling unetrt records and checks."""

from __future__ import annotations

__all__ = ["ORT_DTYPES", "TRT_DTYPES", "ONNX_DTYPES", "TORCH_NAMES", "trt_dtype_name", "torch_dtype"]

#: ONNX Runtime ``NodeArg.type`` strings.
ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(bfloat16)": "bfloat16", "tensor(int64)": "int64", "tensor(int32)": "int32",
              "tensor(int16)": "int16", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
              "tensor(float8e4m3fn)": "float8_e4m3fn", "tensor(float8e5m2)": "float8_e5m2",
              "tensor(int4)": "int4", "tensor(uint4)": "uint4", "tensor(float4e2m1)": "float4_e2m1",
              "tensor(float8e8m0)": "float8_e8m0", "tensor(uint16)": "uint16"}

#: ``trt.DataType`` member names (TensorRT 10 / 11 / TensorRT-RTX).
TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
              "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "float8_e4m3fn", "INT4": "int4",
              "FP4": "float4_e2m1", "E8M0": "float8_e8m0"}

#: ``onnx.TensorProto`` element-type names.
ONNX_DTYPES = {"FLOAT": "float32", "FLOAT16": "float16", "DOUBLE": "float64", "BFLOAT16": "bfloat16",
               "INT64": "int64", "INT32": "int32", "INT16": "int16", "INT8": "int8", "UINT8": "uint8",
               "BOOL": "bool", "FLOAT8E4M3FN": "float8_e4m3fn", "FLOAT8E5M2": "float8_e5m2", "INT4": "int4",
               "UINT4": "uint4", "FLOAT4E2M1": "float4_e2m1", "FLOAT8E8M0": "float8_e8m0", "UINT16": "uint16"}

#: unetrt dtype name -> ``torch`` attribute, where the spellings differ (``None``: no unpacked torch dtype;
#: FP4 is only stored two to a byte, ``float4_e2m1fn_x2``).
TORCH_NAMES: dict[str, str | None] = {"float8_e8m0": "float8_e8m0fnu", "float4_e2m1": None}


def trt_dtype_name(dtype: object) -> str:
    """Numpy-style name of a ``trt.DataType`` (unknown members keep their lower-cased name)."""
    name = getattr(dtype, "name", str(dtype).rsplit(".", 1)[-1])
    return TRT_DTYPES.get(name, name.lower())


def torch_dtype(name: str, torch: object = None) -> object:
    """The ``torch.dtype`` for a unetrt dtype name (``"float8_e4m3fn"`` -> ``torch.float8_e4m3fn``).

    Raises:
        UnetrtError: torch has no such (unpacked) dtype, e.g. ``float4_e2m1`` I/O tensors.
    """
    from ..errors import UnetrtError

    if torch is None:
        import torch as torch_module

        torch = torch_module
    attr = TORCH_NAMES.get(name, name)
    dtype = getattr(torch, attr, None) if attr else None
    if dtype is None:
        raise UnetrtError(f"tensor dtype {name} has no torch equivalent", "an I/O dtype torch can hold "
                          "(float32/16, bfloat16, float8, int8/32/64, uint8, bool)",
                          "keep this tensor inside the network (Q/DQ around it) or cast it at the I/O")
    return dtype
