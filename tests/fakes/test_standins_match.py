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


def _public(obj) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def _instances(module):
    """One instance of each stand-in class a runner or builder touches (instance attributes count too)."""
    from tests.fakes.trt_standins import identity_onnx  # noqa: F401 - same module family

    logger_cls = type("L", (module.ILogger,), {"log": lambda self, s, m: None})
    logger = logger_cls()
    builder = module.Builder(logger)
    return {"Builder": builder, "IBuilderConfig": builder.create_builder_config(),
            "Runtime": module.Runtime(logger)}


@pytest.mark.parametrize("name", ["Builder", "IBuilderConfig", "Runtime"])
def test_rtx_standin_instances_have_only_real_attributes(rtx, name):
    """Instance attributes too (a ``platform_has_fast_fp16`` set in ``__init__`` hides from ``dir(cls)``)."""
    standin = _instances(make_module(*FLAVOURS["rtx"]))[name]
    assert _public(standin) - _public(getattr(rtx, name)) == set()


@pytest.mark.parametrize("name", ["Refitter", "OnnxParserRefitter", "ISerializationConfig", "SerializationFlag",
                                  "HardwareCompatibilityLevel"])
def test_rtx_refit_standins_match_the_bindings(rtx, name):
    standin = getattr(make_module(*FLAVOURS["rtx"]), name)
    if name.endswith(("Flag", "Level")):
        assert _members(standin) == _members(getattr(rtx, name))
    else:
        assert _public(standin) - _public(getattr(rtx, name)) == set()


def _stub_members(class_name: str) -> set[str]:
    """Public members of ``class_name`` in tensorrt-stubs (TensorRT 10.13), read with ast."""
    import ast
    from pathlib import Path

    stub = Path(__file__).resolve().parents[2] / ".venv" / "typestubs" / "tensorrt_bindings" / "tensorrt.pyi"
    if not stub.is_file():
        pytest.skip("tensorrt-stubs not installed (make dev runs scripts/trt_stubs.py)")
    tree = ast.parse(stub.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    out = set()
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
    return {n for n in out if not n.startswith("_")}


@pytest.mark.parametrize("name", ["Builder", "IBuilderConfig", "Runtime", "ICudaEngine", "IExecutionContext",
                                  "Refitter", "OnnxParserRefitter", "ISerializationConfig"])
def test_tensorrt10_standins_have_only_stub_attributes(name):
    module = make_module(*FLAVOURS["10"])
    standin = _instances(module).get(name, getattr(module, name))
    extra = {"num_io_tensors", "num_optimization_profiles", "device_memory_size_v2", "device_memory_size",
             "refittable"} if name == "ICudaEngine" else set()
    assert (_public(standin) | extra) - _stub_members(name) - {"active_optimization_profile"} == set()


@needs_headers
def test_fast_fp16_query_only_where_the_headers_have_it():
    root = headers_root()
    assert "platformHasFastFp16" in (root / "10.16" / "NvInfer.h").read_text()
    assert "platformHasFastFp16" not in (root / "11.1" / "NvInfer.h").read_text()
    logger = {}
    for key, has in (("10", True), ("11", False), ("rtx", False)):
        module = make_module(*FLAVOURS[key])
        logger[key] = type("L", (module.ILogger,), {"log": lambda self, s, m: None})()
        assert hasattr(module.Builder(logger[key]), "platform_has_fast_fp16") is has, key


def test_set_compute_capability_rejects_a_bad_index_like_the_bindings(rtx):
    """The real call returns False (and logs an API usage error) for an index past num_compute_capabilities."""
    for module in (rtx, make_module(*FLAVOURS["rtx"])):
        logger = type("L", (module.ILogger,), {"log": lambda self, s, m: None})()
        config = module.Builder(logger).create_builder_config()
        config.num_compute_capabilities = 1
        assert config.set_compute_capability(module.ComputeCapability.SM86, 0) is True
        assert config.set_compute_capability(module.ComputeCapability.SM86, 3) is False
