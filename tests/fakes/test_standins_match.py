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
