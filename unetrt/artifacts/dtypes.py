"""Dtype names of each framework -> numpy-style names, the one spelling unetrt records and checks."""

from __future__ import annotations

__all__ = ["ORT_DTYPES", "TRT_DTYPES", "ONNX_DTYPES", "trt_dtype_name"]

#: ONNX Runtime ``NodeArg.type`` strings.
ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(bfloat16)": "bfloat16", "tensor(int64)": "int64", "tensor(int32)": "int32",
              "tensor(int16)": "int16", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
              "tensor(float8e4m3fn)": "float8_e4m3fn", "tensor(float8e5m2)": "float8_e5m2",
              "tensor(int4)": "int4", "tensor(uint4)": "uint4", "tensor(float4e2m1)": "float4_e2m1"}

#: ``trt.DataType`` member names (TensorRT 10 / 11 / TensorRT-RTX).
TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
              "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "float8_e4m3fn", "INT4": "int4",
              "FP4": "float4_e2m1", "E8M0": "float8_e8m0"}

#: ``onnx.TensorProto`` element-type names.
ONNX_DTYPES = {"FLOAT": "float32", "FLOAT16": "float16", "DOUBLE": "float64", "BFLOAT16": "bfloat16",
               "INT64": "int64", "INT32": "int32", "INT16": "int16", "INT8": "int8", "UINT8": "uint8",
               "BOOL": "bool", "FLOAT8E4M3FN": "float8_e4m3fn", "FLOAT8E5M2": "float8_e5m2", "INT4": "int4",
               "UINT4": "uint4", "FLOAT4E2M1": "float4_e2m1"}


def trt_dtype_name(dtype: object) -> str:
    """Numpy-style name of a ``trt.DataType`` (unknown members keep their lower-cased name)."""
    name = getattr(dtype, "name", str(dtype).rsplit(".", 1)[-1])
    return TRT_DTYPES.get(name, name.lower())
