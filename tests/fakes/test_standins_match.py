"""The stand-ins' attribute sets against the real APIs: NVIDIA's 10.16 / 11.1 headers and the installed
``tensorrt_rtx`` bindings (which import without a GPU)."""

from __future__ import annotations

import importlib

import pytest

from tests.fakes.headers import SKIP_REASON, header_enum, headers_root
from tests.fakes.trt_standins import FLAVOURS, make_module

needs_headers = pytest.mark.skipif(headers_root() is None, reason=SKIP_REASON)


def _members(enum_cls) -> dict[str, int]:
    return {name: int(value) for name, value in enum_cls.__members__.items()}


@needs_headers
@pytest.mark.parametrize("key, version", [("10", "10.16"), ("11", "11.1")])
@pytest.mark.parametrize("enum_name", ["BuilderFlag", "NetworkDefinitionCreationFlag", "DataType",
                                       "ProfilingVerbosity", "ExecutionContextAllocationStrategy", "TensorIOMode",
                                       "HardwareCompatibilityLevel"])
def test_enums_match_the_headers(key, version, enum_name):
    standin = _members(getattr(make_module(*FLAVOURS[key]), enum_name))
    real = header_enum(version, enum_name)
    if enum_name == "BuilderFlag":
        real.pop("WEIGHTLESS", None)  # an alias of STRIP_PLAN: pybind lists it under its own value only
    assert standin == real


@pytest.fixture(scope="module")
def rtx():
    try:
        return importlib.import_module("tensorrt_rtx")
    except ImportError as exc:
        pytest.skip(f"tensorrt_rtx not installed ({exc})")


@pytest.mark.parametrize("enum_name", ["BuilderFlag", "NetworkDefinitionCreationFlag", "DataType", "ComputeCapability",
                                       "CudaGraphStrategy", "ProfilingVerbosity", "TensorIOMode",
                                       "DynamicShapesKernelSpecializationStrategy", "ExecutionContextAllocationStrategy"])
def test_rtx_enums_match_the_bindings(rtx, enum_name):
    assert _members(getattr(make_module(*FLAVOURS["rtx"]), enum_name)) == _members(getattr(rtx, enum_name))


@pytest.mark.parametrize("standin_name, real_name", [
    ("Runtime", "Runtime"), ("Builder", "Builder"), ("IBuilderConfig", "IBuilderConfig"),
    ("ICudaEngine", "ICudaEngine"), ("IExecutionContext", "IExecutionContext"), ("IRuntimeConfig", "IRuntimeConfig"),
    ("IRuntimeCache", "IRuntimeCache"),
])
def test_rtx_standin_methods_exist_in_the_bindings(rtx, standin_name, real_name):
    module = make_module(*FLAVOURS["rtx"])
    cls = getattr(module, standin_name)
    engine_attrs = {"num_io_tensors", "num_optimization_profiles", "device_memory_size_v2"}
    names = {n for n in dir(cls) if not n.startswith("_")} | (engine_attrs if standin_name == "ICudaEngine" else set())
    real = set(dir(getattr(rtx, real_name)))
    assert names - real == set()


@needs_headers
@pytest.mark.parametrize("key, version", [("10", "10.16"), ("11", "11.1")])
def test_standard_runtime_config_has_no_runtime_cache(key, version):
    root = headers_root()
    text = (root / version / "NvInferRuntime.h").read_text()
    body = text[text.index("class IRuntimeConfig : public INoCopy"):text.index("}; // class IRuntimeConfig")]
    assert "RuntimeCache" not in body and "CudaGraph" not in body
    config = make_module(*FLAVOURS[key]).IRuntimeConfig
    assert {n for n in dir(config) if not n.startswith("_")} == {"get_execution_context_allocation_strategy",
                                                                  "set_execution_context_allocation_strategy"}
    assert ("isStreamCapturable" in text) is False and ("REQUIRE_USER_ALLOCATION" in text) is False


def test_dtype_maps_cover_every_tensorrt_and_onnx_type(rtx):
    import onnx
    import torch

    from unetrt.artifacts.dtypes import ONNX_DTYPES, TRT_DTYPES, torch_dtype, trt_dtype_name
    from unetrt.errors import UnetrtError

    assert set(rtx.DataType.__members__) <= set(TRT_DTYPES)
    assert {trt_dtype_name(rtx.DataType.FP8), trt_dtype_name(rtx.DataType.BF16), trt_dtype_name(rtx.DataType.INT4),
            trt_dtype_name(rtx.DataType.FP4)} == {"float8_e4m3fn", "bfloat16", "int4", "float4_e2m1"}
    wanted = {"FLOAT8E4M3FN", "FLOAT8E5M2", "BFLOAT16", "INT4", "UINT4", "FLOAT4E2M1", "FLOAT8E8M0"}
    assert wanted <= set(ONNX_DTYPES) and wanted <= set(onnx.TensorProto.DataType.keys())
    assert torch_dtype("float8_e4m3fn") is torch.float8_e4m3fn and torch_dtype("bfloat16") is torch.bfloat16
    assert torch_dtype("float8_e8m0") is torch.float8_e8m0fnu
    with pytest.raises(UnetrtError, match="float4_e2m1 has no torch equivalent"):
        torch_dtype("float4_e2m1")


@needs_headers
@pytest.mark.parametrize("version", ["10.16", "11.1"])
def test_dtype_map_covers_the_headers(version):
    from unetrt.artifacts.dtypes import TRT_DTYPES

    assert set(header_enum(version, "DataType")) <= set(TRT_DTYPES)
