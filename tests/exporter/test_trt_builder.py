"""TensorRT / TensorRT-RTX engine builds: precision, profiles, parser errors, atomic output."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from unetrt.errors import EngineBuildError, MissingDependencyError, ProfileError, Terminated
from unetrt.exporter import trt_builder as trt_build
from unetrt.exporter.fp16 import convert_fp16
from unetrt.exporter.trt_builder import EngineInfo, ShapeProfile, build_engine, import_tensorrt

sys.path.insert(0, os.path.dirname(__file__))
from tiny_unet_onnx import broken_model, tiny_unet  # noqa: E402


def _flavour():
    try:
        return import_tensorrt("auto")[1]
    except MissingDependencyError:
        return None


FLAVOUR = _flavour()
requires_trt = pytest.mark.skipif(FLAVOUR is None, reason="neither tensorrt nor tensorrt_rtx imports")
STRONGLY_TYPED = FLAVOUR is not None and trt_build._capabilities(FLAVOUR, import_tensorrt()[2]).strongly_typed
PROFILE = [{"input": ShapeProfile.parse("1x3x32x32", "1x3x128x128", "2x3x256x256")}]
FEEDS = [{"input": np.random.default_rng(2).standard_normal((1, 3, 40, 40), dtype=np.float32)}]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """FP32 and FP16 ONNX of the tiny UNet (width 8) and of a wide one (width 64) where weights dominate."""
    out = {}
    for name, width in [("tiny", 8), ("wide", 64)]:
        path, _ = tiny_unet(tmp_path_factory, width=width)
        half = tmp_path_factory.mktemp(f"trt_{name}") / "model_fp16.onnx"
        convert_fp16(path, half, feeds=FEEDS)
        out[name] = (path, half)
    return out


# --- no TensorRT needed ------------------------------------------------------------------------------

@pytest.mark.parametrize("args, match", [
    (("1x3x64x64", "1x3x32x32", "1x3x128x128"), "not ordered"),
    (("1x3x64", "1x3x64x64", "1x3x64x64"), "mixes ranks"),
    (("1x3xax4", "1x3x4x4", "1x3x4x4"), "bad min shape"),
    (("0x3x4x4", "1x3x4x4", "1x3x4x4"), "positive sizes"),
])
def test_shape_profile_parse_rejects(args, match):
    with pytest.raises(ProfileError, match=match) as info:
        ShapeProfile.parse(*args)
    assert "\n" not in str(info.value) and str(info.value).count(" | ") == 2


def test_shape_profile_parse_ok():
    p = ShapeProfile.parse("1x3x64x64", "2x3x256x256", "4x3x512x512")
    assert p.min == (1, 3, 64, 64) and p.max == (4, 3, 512, 512)
    assert p.to_dict() == {"min": [1, 3, 64, 64], "opt": [2, 3, 256, 256], "max": [4, 3, 512, 512]}
    assert ShapeProfile((1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 8, 8)).opt == (1, 3, 8, 8)


def test_import_tensorrt_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"unetrt\[gpu\]"):
        import_tensorrt("tensorrt")
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    with pytest.raises(MissingDependencyError, match=r"unetrt\[gpu\].*unetrt\[rtx\]"):
        import_tensorrt("auto")
    with pytest.raises(EngineBuildError, match="unknown TensorRT flavour"):
        import_tensorrt("tensorrt-9")


@pytest.mark.parametrize("flavour, version, strong, rtx", [
    ("tensorrt", "10.8.0.43", False, False), ("tensorrt", "10.12.0.36", True, False),
    ("tensorrt", "11.1.0", True, False), ("tensorrt-rtx", "1.7.1.116", True, True),
])
def test_capabilities_by_version(flavour, version, strong, rtx):
    caps = trt_build._capabilities(flavour, version)
    assert (caps.strongly_typed, caps.rtx, caps.timing_cache) == (strong, rtx, not rtx)


class _FakeConfig:
    def __init__(self):
        self.flags, self.pools = [], {}

    def set_flag(self, flag):
        self.flags.append(flag)

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool] = size


def test_weakly_typed_fp16_sets_flag_or_raises_without_fast_fp16():
    """TensorRT < 10.12: FP16 via BuilderFlag.FP16, refused when the GPU lacks fast FP16."""
    fake = SimpleNamespace(BuilderFlag=SimpleNamespace(FP16="FP16", VERSION_COMPATIBLE="VC"),
                           MemoryPoolType=SimpleNamespace(WORKSPACE="WS"))
    caps = trt_build._capabilities("tensorrt", "10.8.0")
    config = _FakeConfig()
    options = trt_build._configure(fake, SimpleNamespace(platform_has_fast_fp16=True), config, caps, "fp16",
                                   1 << 20, None, None, True)
    assert config.flags == ["FP16", "VC"] and config.pools == {"WS": 1 << 20}
    assert options["builder_flags"] == ["FP16", "VERSION_COMPATIBLE"] and not options["strongly_typed"]
    with pytest.raises(EngineBuildError, match="no fast FP16"):
        trt_build._configure(fake, SimpleNamespace(platform_has_fast_fp16=False), _FakeConfig(), caps, "fp16",
                             None, None, None, False)
    strong = trt_build._capabilities("tensorrt", "10.13.0")
    config = _FakeConfig()
    trt_build._configure(fake, SimpleNamespace(), config, strong, "fp16", None, None, None, False)
    assert config.flags == []  # strongly typed: precision comes from the ONNX, never the flag


# --- builds (TensorRT or TensorRT-RTX) -------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.trt
@requires_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_build_fp32_and_fp16(models, tmp_path, precision):
    fp32, fp16 = models["tiny"]
    src = fp16 if precision == "fp16" and STRONGLY_TYPED else fp32
    steps = []
    info = build_engine(src, tmp_path / "m.engine", profiles=PROFILE, precision=precision,
                        progress=lambda phase, step, total: steps.append((phase, step, total)))
    data = (tmp_path / "m.engine").read_bytes()
    assert isinstance(info, EngineInfo) and info.precision == precision and info.flavour == FLAVOUR
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size_bytes == len(data)
    assert data[:4] in (b"ftrt", b"vtrt")  # TensorRT's own plan magic: no header in front
    assert info.io == [{"name": "input", "mode": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},
                       {"name": "logits", "mode": "output", "dtype": "float32", "shape": [-1, 3, -1, -1]}]
    assert info.profiles == [{"input": PROFILE[0]["input"].to_dict()}]
    assert info.onnx_sha256 == hashlib.sha256(open(src, "rb").read()).hexdigest()
    assert steps and all(1 <= s <= t for _, s, t in steps if t)
    assert sorted(os.listdir(tmp_path)) == ["m.engine"]


@pytest.mark.trt
@requires_trt
def test_fp16_engine_markedly_smaller(models, tmp_path):
    fp32, fp16 = models["wide"]
    a = build_engine(fp32, tmp_path / "fp32.engine", profiles=PROFILE, precision="fp32")
    b = build_engine(fp16 if STRONGLY_TYPED else fp32, tmp_path / "fp16.engine", profiles=PROFILE, precision="fp16")
    assert b.size_bytes < 0.75 * a.size_bytes, (a.size_bytes, b.size_bytes)


@pytest.mark.trt
@requires_trt
@pytest.mark.skipif(not STRONGLY_TYPED, reason="weakly typed TensorRT builds FP16 from the FP32 ONNX")
def test_fp16_from_fp32_onnx_raises_on_strongly_typed(models, tmp_path):
    with pytest.raises(EngineBuildError, match="holds no float16 tensors"):
        build_engine(models["tiny"][0], tmp_path / "x.engine", profiles=PROFILE, precision="fp16")
    with pytest.raises(EngineBuildError, match="holds float16 tensors"):
        build_engine(models["tiny"][1], tmp_path / "x.engine", profiles=PROFILE, precision="fp32")
    assert os.listdir(tmp_path) == []


@pytest.mark.trt
@requires_trt
@pytest.mark.parametrize("profiles, match", [
    ([{"image": PROFILE[0]["input"]}], r"unknown inputs \['image'\]"),
    ([{"input": ShapeProfile.parse("1x3x32", "1x3x64", "1x3x96")}], "rank 3"),
    ([{"input": ShapeProfile.parse("1x1x32x32", "1x1x64x64", "1x1x96x96")}], "static dim 1"),
    ([], "no optimisation profile"),
    ([{"input": "1x3x32x32"}], "ShapeProfile"),
])
def test_bad_profiles_raise_one_line(models, tmp_path, profiles, match):
    with pytest.raises(ProfileError, match=match) as info:
        build_engine(models["tiny"][0], tmp_path / "x.engine", profiles=profiles)
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.trt
@requires_trt
def test_parser_error_names_node_and_op(tmp_path):
    src = broken_model(tmp_path / "broken.onnx")
    with pytest.raises(EngineBuildError, match=r"node 'bad_node' \(FooBar\)") as info:
        build_engine(src, tmp_path / "x.engine", profiles=PROFILE)
    assert "\n" not in str(info.value) and not (tmp_path / "x.engine").exists()


@pytest.mark.trt
@requires_trt
def test_abort_leaves_no_file_and_keeps_old_engine(models, tmp_path):
    engine = tmp_path / "m.engine"
    with pytest.raises(EngineBuildError, match="aborted"):
        build_engine(models["tiny"][0], engine, profiles=PROFILE, progress=lambda *a: False)
    assert os.listdir(tmp_path) == []
    engine.write_bytes(b"old engine")

    def interrupt(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_engine(models["tiny"][0], engine, profiles=PROFILE, progress=interrupt)
    assert os.listdir(tmp_path) == ["m.engine"] and engine.read_bytes() == b"old engine"

    def sigint(*_):  # a real Ctrl-C, delivered while TensorRT is building
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        build_engine(models["tiny"][0], engine, profiles=PROFILE, progress=sigint)
    assert os.listdir(tmp_path) == ["m.engine"] and engine.read_bytes() == b"old engine"

    def broken(*_):
        raise ValueError("callback bug")

    with pytest.raises(ValueError, match="callback bug"):
        build_engine(models["tiny"][0], engine, profiles=PROFILE, progress=broken)
    assert os.listdir(tmp_path) == ["m.engine"] and engine.read_bytes() == b"old engine"


class _SignalFromTensorRTLog(logging.Handler):
    """Sends ``signum`` to this process from inside TensorRT's logger callback (the signal lands while
    TensorRT's C++ frames are on the stack), once the builder has reported its first step."""

    def __init__(self, signum):
        super().__init__(logging.DEBUG)
        self.signum, self.armed, self.sent = signum, False, False

    def arm(self, *_):
        self.armed = True
        return True

    def emit(self, record):
        if self.armed and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


@pytest.mark.trt
@requires_trt
@pytest.mark.parametrize("signum, raised", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_signal_during_the_tensorrt_build_stops_it(models, tmp_path, signum, raised):
    from unetrt.errors import terminate_as_interrupt

    sender = _SignalFromTensorRTLog(signum)
    tensorrt_log = logging.getLogger("unetrt.tensorrt")
    level = tensorrt_log.level
    tensorrt_log.setLevel(logging.DEBUG)
    tensorrt_log.addHandler(sender)
    previous = signal.getsignal(signum)
    try:
        with terminate_as_interrupt(), pytest.raises(raised):
            build_engine(models["tiny"][0], tmp_path / "m.engine", profiles=PROFILE, progress=sender.arm)
    finally:
        tensorrt_log.removeHandler(sender)
        tensorrt_log.setLevel(level)
    assert sender.sent and os.listdir(tmp_path) == []
    assert signal.getsignal(signum) == previous


@pytest.mark.trt
@requires_trt
def test_several_profiles_and_options_recorded(models, tmp_path):
    profiles = [{"input": ShapeProfile.parse("1x3x32x32", "1x3x64x64", "1x3x64x64")},
                {"input": ShapeProfile.parse("1x3x64x64", "2x3x128x128", "4x3x256x256")}]
    kwargs = {"compute_capabilities": ["sm86", "SM89"]} if FLAVOUR == "tensorrt-rtx" else {}
    info = build_engine(models["tiny"][0], tmp_path / "m.engine", profiles=profiles, workspace_bytes=1 << 28,
                        optimization_level=1, **kwargs)
    assert len(info.profiles) == 2 and info.profiles[1]["input"]["max"] == [4, 3, 256, 256]
    assert info.options["workspace_bytes"] == 1 << 28 and info.options["optimization_level"] == 1
    if FLAVOUR == "tensorrt-rtx":
        assert info.options["compute_capabilities"] == ["SM86", "SM89"]
    assert info.to_dict()["options"]["version_compatible"] is False


@pytest.mark.trt
@requires_trt
def test_failed_build_reports_logged_errors(models, tmp_path):
    match = "could not build .*(OutOfMemory|workspace).*raise workspace_bytes"
    with pytest.raises(EngineBuildError, match=match) as info:
        build_engine(models["tiny"][0], tmp_path / "x.engine", profiles=PROFILE, workspace_bytes=1 << 20)
    assert "\n" not in str(info.value) and os.listdir(tmp_path) == []


@pytest.mark.trt
@requires_trt
@pytest.mark.skipif(FLAVOUR != "tensorrt-rtx", reason="TensorRT-RTX option rules")
@pytest.mark.parametrize("kwargs, match", [
    ({"timing_cache": "tc.bin"}, "timing cache"),
    ({"version_compatible": True}, "version-compatible"),
    ({"compute_capabilities": ["SM99"]}, "unknown compute-capability"),
    ({"optimization_level": 7}, "optimization_level"),
    ({"precision": "int4"}, "unknown precision"),
])
def test_rtx_refuses_options_it_cannot_honour(models, tmp_path, kwargs, match):
    with pytest.raises(EngineBuildError, match=match):
        build_engine(models["tiny"][0], tmp_path / "x.engine", profiles=PROFILE, **kwargs)
    assert os.listdir(tmp_path) == []


@pytest.mark.trt
@requires_trt
def test_bilinear_fp16_builds(tmp_path_factory, tmp_path):
    path, _ = tiny_unet(tmp_path_factory, bilinear=True)
    half = tmp_path / "bil16.onnx"
    convert_fp16(path, half, feeds=FEEDS)
    info = build_engine(half if STRONGLY_TYPED else path, tmp_path / "bil.engine", profiles=PROFILE, precision="fp16")
    assert info.size_bytes > 0 and (tmp_path / "bil.engine").exists()


# --- stand-ins of TensorRT 10.x / 11.x / TensorRT-RTX (tests/fakes): flags and caches as the real API ----

from tests.fakes.trt_standins import identity_onnx, install  # noqa: E402

ONE = [{"input": ShapeProfile((1, 3, 16, 16), (1, 3, 32, 32), (2, 3, 64, 64))}]
KEYS = {"10": "tensorrt", "11": "tensorrt", "rtx": "tensorrt-rtx"}


def _plan_header(path):
    import json

    data = open(path, "rb").read()
    assert data[:4] == b"ftrt"
    return json.loads(data[4:])


@pytest.fixture
def standin(monkeypatch, tmp_path):
    """``standin(key)`` -> (module, onnx path, list of network flags passed to create_network)."""
    monkeypatch.setattr(trt_build, "_build_gpu", lambda: {"name": "Stand-in GPU", "compute_capability": "8.6"},
                        raising=False)

    def make(key, fp16=False):
        module = install(monkeypatch, key)[key]
        seen = []
        original = module.Builder.create_network
        monkeypatch.setattr(module.Builder, "create_network", lambda self, flags=0: seen.append(flags) or
                            original(self, flags))
        return module, identity_onnx(tmp_path / ("m16.onnx" if fp16 else "m.onnx"), fp16=fp16), seen
    return make


@pytest.mark.parametrize("key, network_flags", [("10", 1 << 1), ("11", 1 << 0), ("rtx", 1 << 0)])
def test_fp32_build_clears_tf32_and_is_detailed(standin, tmp_path, key, network_flags):
    module, src, seen = standin(key)
    info = build_engine(src, tmp_path / "e.engine", profiles=ONE, flavour=KEYS[key])
    header = _plan_header(tmp_path / "e.engine")
    assert seen == [network_flags]  # STRONGLY_TYPED looked up by name: 1 on 10.x, 0 on 11.x/RTX
    assert "TF32" not in header["flags"] and info.tf32 is False
    assert header["verbosity"] == "DETAILED" and info.options["profiling_verbosity"] == "detailed"
    info = build_engine(src, tmp_path / "e.engine", profiles=ONE, flavour=KEYS[key], tf32=True,
                        detailed_profiling=False)
    header = _plan_header(tmp_path / "e.engine")
    assert "TF32" in header["flags"] and info.tf32 is True and header["verbosity"] == "LAYER_NAMES_ONLY"
    assert module.ignored_loggers == 0
    if key == "rtx":
        assert "create_timing_cache" not in module.calls  # deprecated on RTX and may query a GPU


def test_fp16_engine_keeps_tensorrt_tf32_default(standin, tmp_path):
    _, src, _ = standin("11", fp16=True)
    info = build_engine(src, tmp_path / "e.engine", profiles=ONE, flavour="tensorrt", precision="fp16")
    assert info.tf32 is True and "TF32" in _plan_header(tmp_path / "e.engine")["flags"]
    assert "FP16" not in _plan_header(tmp_path / "e.engine")["flags"]  # BuilderFlag.FP16 does not exist on 11


def test_weakly_typed_fp16_uses_the_flag_of_that_module(standin, tmp_path, monkeypatch):
    module, src, seen = standin("10")
    module.__version__ = "10.8.0.43"
    info = build_engine(src, tmp_path / "e.engine", profiles=ONE, flavour="tensorrt", precision="fp16")
    assert seen == [0] and "FP16" in _plan_header(tmp_path / "e.engine")["flags"]
    assert info.options["builder_flags"] == ["FP16"]


def test_timing_cache_from_another_device_is_ignored(standin, tmp_path):
    module, src, _ = standin("10")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"tc:Other GPU")
    info = build_engine(src, tmp_path / "e.engine", profiles=ONE, flavour="tensorrt", timing_cache=str(cache))
    assert info.options["timing_cache_note"] == "timing cache timing.cache: cache from another device, ignored"
    assert cache.read_bytes() == b"tc:Other GPU" and (tmp_path / "e.engine").is_file()
    cache.unlink()
    info = build_engine(src, tmp_path / "e.engine", profiles=ONE, flavour="tensorrt", timing_cache=str(cache))
    assert "timing_cache_note" not in info.options and cache.read_bytes() == b"tc:Stand-in GPU"


def test_standin_rejects_what_tensorrt_rejects():
    """The stand-ins are only worth their tests if they refuse what the bindings refuse."""
    from tests.fakes.trt_standins import make_module

    t11, t10, rtx = make_module("tensorrt", "11.1.0.3"), make_module("tensorrt", "10.16.0.1"), \
        make_module("tensorrt-rtx", "1.7.1.116")
    for module in (t11, rtx):
        assert not hasattr(module.BuilderFlag, "FP16")
        assert not hasattr(module.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert not hasattr(t10.IRuntimeConfig, "create_runtime_cache") and hasattr(rtx.IRuntimeConfig,
                                                                                "create_runtime_cache")
    assert int(t10.BuilderFlag.VERSION_COMPATIBLE) == 13 and int(t11.BuilderFlag.VERSION_COMPATIBLE) == 12
    config = t11.Builder.__new__(t11.Builder).create_builder_config()
    with pytest.raises(TypeError):
        config.set_flag(12)  # a bare int
    with pytest.raises(TypeError):
        config.set_flag(t10.BuilderFlag.TF32)  # another module's enum
    assert not hasattr(make_module("tensorrt", "10.10.0.31").ICudaEngine, "create_runtime_config")


@pytest.mark.parametrize("text, expected", [("10.12.0.36", (10, 12)), ("1.0", (1, 0)), ("10", (10, 0)),
                                            ("10.13.0.35+cuda12", (10, 13)), ("not a version", (0, 0))])
def test_parse_version(text, expected):
    from unetrt.artifacts.trt import parse_version

    assert parse_version(text) == expected


def test_rtx_build_checks_set_compute_capability(standin, tmp_path, monkeypatch):
    module, src, _ = standin("rtx")
    monkeypatch.setattr(module.IBuilderConfig, "set_compute_capability", lambda self, cc, i: False)

    with pytest.raises(EngineBuildError, match="TensorRT-RTX refused compute-capability target SM86 at index 0"):
        build_engine(src, tmp_path / "model.engine", profiles=ONE, flavour="tensorrt-rtx",
                     compute_capabilities=["SM86"])


def test_default_rtx_targets_exist_in_the_floored_release():
    """Every default target is in the installed TensorRT-RTX's enum, and unetrt[rtx] floors the version at
    the release line checked here (an older one lacks some targets)."""
    import configparser
    from pathlib import Path

    from packaging.requirements import Requirement
    from packaging.version import Version

    rtx = pytest.importorskip("tensorrt_rtx")
    assert set(trt_build.DEFAULT_RTX_TARGETS) <= set(rtx.ComputeCapability.__members__)
    assert "SM75" in trt_build.DEFAULT_RTX_TARGETS  # the README lists Turing
    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    (req,) = [Requirement(r) for r in cfg["options.extras_require"]["rtx"].split("\n") if r.strip()]
    floor = min(Version(s.version) for s in req.specifier if s.operator == ">=")
    assert floor.release[:2] == Version(rtx.__version__).release[:2] == (1, 7)
