"""TrtRunner: what can be checked without a GPU (I/O and profile parsing, error paths), plus GPU-only
checks of CUDA-graph replay and device outputs."""

from __future__ import annotations

import enum
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from unetrt.errors import RunnerError
from unetrt.runtime import trt as trt_runtime
from unetrt.runtime.trt import TrtRunner, engine_io, rebuild_command

from tests.fakes.cuda_standin import CpuDevice
from tests.helpers import make_manifest

MANIFEST = make_manifest(
    model={"arch": "milesial", "factory": None, "kwargs": {"width": 4, "in_channels": 3}, "params": 1,
           "checkpoint": {"path": "/ckpt/w.pth", "sha256": "0" * 64}, "weights": "checkpoint"},
    engines=[{"path": "model.engine", "sha256": "1" * 64, "flavour": "tensorrt-rtx", "version": "1.7.1",
              "precision": "fp16"}])


class Mode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


class DType(enum.Enum):
    FLOAT = 1
    HALF = 2


class FakeEngine:
    """The slice of ICudaEngine that engine_io reads."""

    tensors = {"input": (Mode.INPUT, DType.FLOAT, (-1, 3, -1, -1)),
               "logits": (Mode.OUTPUT, DType.HALF, (-1, 2, -1, -1))}

    num_io_tensors = 2

    def get_tensor_name(self, i):
        return list(self.tensors)[i]

    def get_tensor_mode(self, name):
        return self.tensors[name][0]

    def get_tensor_dtype(self, name):
        return self.tensors[name][1]

    def get_tensor_shape(self, name):
        return self.tensors[name][2]

    def get_tensor_profile_shape(self, name, profile):
        assert name == "input" and profile == 0
        return [(1, 3, 32, 32), (2, 3, 256, 256), (4, 3, 512, 1024)]


def test_engine_io_reads_profile_bounds():
    inputs, outputs = engine_io(FakeEngine())
    spec = inputs["input"]
    assert spec.shape == (None, 3, None, None) and spec.dtype == "float32"
    assert spec.min_shape == (1, 3, 32, 32) and spec.max_shape == (4, 3, 512, 1024)
    assert outputs == {"logits": ("float16", (None, 2, None, None))}
    assert spec.problem((1, 3, 32, 2048))[0] == "W is 2048 > 1024"
    assert spec.problem((8, 3, 64, 64))[0] == "N is 8 > 4"
    assert spec.problem((1, 3, 16, 64))[0] == "H is 16 < 32"
    assert spec.problem((4, 3, 512, 1024)) is None
    assert "N in [1, 4], H in [32, 512], W in [32, 1024]" in spec.describe()


def test_rebuild_command_uses_the_manifest():
    cmd = rebuild_command(MANIFEST, "fp16", "export/m")
    assert cmd == ("unet-export --arch milesial --model-kwargs '{\"in_channels\": 3, \"width\": 4}' "
                   "--checkpoint /ckpt/w.pth --fp16 --engine -o export/m --force")
    assert rebuild_command(None).startswith("unet-export --arch ARCH --engine")


def test_missing_engine_file(tmp_path):
    with pytest.raises(RunnerError, match="does not exist"):
        TrtRunner(tmp_path / "model.engine")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks CPU-only behaviour")
def test_activate_without_cuda_says_so(tmp_path):
    (tmp_path / "model.engine").write_bytes(b"plan")
    runner = TrtRunner(tmp_path / "model.engine")
    with pytest.raises(RunnerError, match="model.engine needs a CUDA GPU"):
        runner.activate()
    assert not runner.is_active


def test_deserialisation_failure_names_the_rebuild(tmp_path, monkeypatch):
    try:
        from unetrt.artifacts.trt import import_tensorrt

        trt = import_tensorrt("auto")[0]
    except ImportError:
        pytest.skip("needs tensorrt or tensorrt_rtx")
    monkeypatch.setattr(trt_runtime, "_device",
                        lambda index, path: CpuDevice(SimpleNamespace(capturing=set()), name="Fake GPU"))
    (tmp_path / "model.engine").write_bytes(b"not a plan" * 64)
    runner = TrtRunner(tmp_path / "model.engine", manifest=MANIFEST)
    with pytest.raises(RunnerError) as info:
        runner.activate()
    message = str(info.value)
    assert "engine built by another TensorRT version or for another GPU" in message
    assert "(manifest: tensorrt-rtx 1.7.1)" in message and "Fake GPU" in message
    assert "unet-export --arch milesial" in message and "--fp16 --engine" in message
    assert "\n" not in message


@pytest.mark.gpu
@pytest.mark.trt
def test_cuda_graph_per_shape_and_device_outputs(export_dir, tmp_path):
    from unetrt.errors import MissingDependencyError
    from unetrt.exporter.trt_builder import ShapeProfile, build_engine

    from tests.runtime.conftest import gpu_flavour_or_skip

    engine = tmp_path / "model.engine"
    flavour = gpu_flavour_or_skip()
    try:
        build_engine(export_dir / "model.onnx", engine, flavour=flavour,
                     profiles=[{"input": ShapeProfile((1, 3, 16, 16), (1, 3, 64, 64), (2, 3, 128, 128))}])
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(0)
    feeds = [rng.random(shape, dtype=np.float32) for shape in [(1, 3, 32, 32), (2, 3, 64, 48), (1, 3, 32, 32)]]
    with TrtRunner(engine) as plain, TrtRunner(engine, cuda_graph=True) as graphed:
        for x in feeds:
            np.testing.assert_allclose(graphed.infer({"input": x})["logits"], plain.infer({"input": x})["logits"],
                                       rtol=0, atol=1e-5)
        # standard TensorRT: one user-captured graph (and context) per shape; TensorRT-RTX captures its own
        # graphs (cuda_graph_strategy), so the runner holds none
        assert len(graphed._graphs) == (0 if graphed._state["flavour"] == "tensorrt-rtx" else 2)
        on_device = graphed.infer({"input": torch.from_numpy(feeds[0]).cuda()}, to_host=False)["logits"]
        assert on_device.is_cuda and on_device.dtype == torch.float32
        with pytest.raises(Exception, match="W is 256 > 128"):
            plain.infer({"input": np.zeros((1, 3, 32, 256), np.float32)})


# --- stand-ins of TensorRT 10.x / 11.x / TensorRT-RTX (tests/fakes): what a GPU run would do ----------

from tests.fakes.trt_standins import identity_onnx, install  # noqa: E402
from unetrt.exporter import trt_builder  # noqa: E402
from unetrt.exporter.trt_builder import ShapeProfile, build_engine  # noqa: E402

PROFILES = [{"input": ShapeProfile((1, 3, 16, 16), (1, 3, 32, 32), (2, 3, 64, 64))}]


def _build(tmp_path, monkeypatch, flavour, name="model.engine", **kw):
    """Build a stand-in plan through build_engine; return the manifest describing it."""
    monkeypatch.setattr(trt_builder, "_build_gpu", lambda: {"name": "Stand-in GPU", "compute_capability": "8.6"},
                        raising=False)
    onnx_path = identity_onnx(tmp_path / "model.onnx")
    if flavour == "tensorrt-rtx":
        kw.setdefault("compute_capabilities", ["SM86"])
    info = build_engine(onnx_path, tmp_path / name, profiles=PROFILES, flavour=flavour, **kw).to_dict()
    info["path"] = name
    return make_manifest(engines=[info])


@pytest.fixture
def on_cpu(monkeypatch):
    """Run TrtRunner on CPU memory: the device is a stand-in that shares state with the TensorRT stand-in."""
    devices = []

    def use(module):
        def make(index, path):
            devices.append(CpuDevice(module))
            return devices[-1]
        monkeypatch.setattr(trt_runtime, "_device", make)
        return devices
    return use


def _expected(x):
    return np.stack([(k + 1) * x[:, k % 3] for k in range(3)], axis=1)


@pytest.mark.parametrize("key", ["10", "11", "rtx"])
def test_runs_on_every_flavour_with_checked_bindings(key, tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, key)
    flavour = "tensorrt-rtx" if key == "rtx" else "tensorrt"
    manifest = _build(tmp_path, monkeypatch, flavour)
    on_cpu(mods[key])
    x = np.random.default_rng(0).random((2, 3, 32, 48), dtype=np.float32)
    with TrtRunner(tmp_path / "model.engine", manifest=manifest) as runner:
        np.testing.assert_array_equal(runner.infer({"input": x})["logits"], _expected(x))
        assert any(f"{flavour} {mods[key].__version__}" in n for n in runner.notes)
        ctx = runner._state["context"]
        with pytest.raises(RunnerError, match=r"TensorRT refused input shape 1x3x128x16 for 'input'.*"
                                              r"H, W in \[16, 64\]"):
            runner._bind({"input": torch.zeros((1, 3, 128, 16))})
        monkeypatch.setattr(ctx, "set_tensor_address", lambda name, ptr: False)
        with pytest.raises(RunnerError, match="TensorRT refused the address of input 'input'"):
            runner.infer({"input": x})
    assert mods[key].ignored_loggers == 0  # builder, parser and runtime share the process logger


def test_runner_uses_the_engines_own_flavour(tmp_path, monkeypatch, on_cpu):
    """Both installed: an RTX plan must go to TensorRT-RTX, not to whichever imports first ("auto")."""
    mods = install(monkeypatch, "10", "rtx")
    manifest = _build(tmp_path, monkeypatch, "tensorrt-rtx")
    on_cpu(mods["rtx"])
    runner = TrtRunner(tmp_path / "model.engine", manifest=manifest)
    assert runner.flavour == "tensorrt-rtx"
    with runner:
        assert runner._state["trt"] is mods["rtx"]
    with pytest.raises(RunnerError, match="plan of tensorrt-rtx given to tensorrt"):
        TrtRunner(tmp_path / "model.engine", flavour="auto", manifest=manifest).activate()


def test_runtime_cache_is_rtx_only(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "10")
    manifest = _build(tmp_path, monkeypatch, "tensorrt")
    on_cpu(mods["10"])
    cache = tmp_path / "rt.cache"
    with TrtRunner(tmp_path / "model.engine", manifest=manifest, runtime_cache=cache) as runner:
        runner.infer({"input": np.ones((1, 3, 16, 16), np.float32)})
    assert any("runtime cache rt.cache ignored: the JIT runtime cache is a TensorRT-RTX feature" in n
               for n in runner.notes)
    assert not cache.exists()


def test_rtx_runtime_cache_stale_and_lifetime(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "rtx")
    rtx = mods["rtx"]
    manifest = _build(tmp_path, monkeypatch, "tensorrt-rtx")
    on_cpu(rtx)
    cache = tmp_path / "caches" / "rt.cache"
    cache.parent.mkdir()
    cache.write_bytes(b"rtxcache 1.6.0 from an older release")
    with TrtRunner(tmp_path / "model.engine", manifest=manifest, runtime_cache=cache) as runner:
        runner.infer({"input": np.ones((1, 3, 16, 16), np.float32)})
        assert runner._state["runtime_config"].get_runtime_cache() is runner._state["runtime_cache"]
    assert any("is stale" in n and "started empty" in n for n in runner.notes)
    assert cache.read_bytes() == b"rtxcache 1.7.1.116 kernels"  # rewritten at deactivate
    assert rtx.events.index("context destroyed") < rtx.events.index("runtime cache destroyed")
    rtx.events.clear()
    with TrtRunner(tmp_path / "model.engine", manifest=manifest, runtime_cache=cache) as again:
        pass
    assert not any("stale" in n for n in again.notes)


def test_cuda_graph_replays_per_shape_on_tensorrt(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "10")
    manifest = _build(tmp_path, monkeypatch, "tensorrt")
    on_cpu(mods["10"])
    rng = np.random.default_rng(1)
    feeds = [rng.random(s, dtype=np.float32) for s in [(1, 3, 16, 32), (2, 3, 32, 32), (1, 3, 16, 32)]]
    with TrtRunner(tmp_path / "model.engine", cuda_graph=True, manifest=manifest) as runner:
        for x in feeds:
            np.testing.assert_array_equal(runner.infer({"input": x})["logits"], _expected(x))
        assert len(runner._graphs) == 2 and runner._graph_failure is None
        assert runner.min_warmup == 1  # standard TensorRT plans hold their final kernels


def test_failed_capture_falls_back_with_the_real_reason(tmp_path, monkeypatch, on_cpu):
    """execute_async_v3 returning False inside the capture: no exception, a note naming it, right results."""
    mods = install(monkeypatch, "10")
    manifest = _build(tmp_path, monkeypatch, "tensorrt")
    on_cpu(mods["10"])
    monkeypatch.setattr(mods["10"].IExecutionContext, "_capturable", lambda self, stream: False)
    x = np.random.default_rng(2).random((1, 3, 16, 16), dtype=np.float32)
    with TrtRunner(tmp_path / "model.engine", cuda_graph=True, manifest=manifest) as runner:
        for _ in range(3):
            np.testing.assert_array_equal(runner.infer({"input": x})["logits"], _expected(x))
        assert not runner._graphs
    note = next(n for n in runner.notes if "CUDA graph capture failed" in n)
    assert "execute_async_v3 returned False" in note and "cannot be captured" in note
    assert note.endswith("running without CUDA graphs")


def test_rtx_cuda_graph_uses_its_own_strategy(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "rtx")
    manifest = _build(tmp_path, monkeypatch, "tensorrt-rtx")
    on_cpu(mods["rtx"])
    with TrtRunner(tmp_path / "model.engine", cuda_graph=True, manifest=manifest) as runner:
        x = np.ones((1, 3, 16, 16), np.float32)
        np.testing.assert_array_equal(runner.infer({"input": x})["logits"], _expected(x))
        config = runner._state["runtime_config"]
        assert config.cuda_graph_strategy is mods["rtx"].CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
        assert not runner._graphs  # no user capture of lazily specialised kernels
        assert runner._state["context"].config is config


def test_version_compatible_plan_needs_host_code(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "10")
    manifest = _build(tmp_path, monkeypatch, "tensorrt", version_compatible=True)
    on_cpu(mods["10"])
    mods["10"].__version__ = "10.17.0.1"  # a later 10.x loads a version-compatible plan
    with TrtRunner(tmp_path / "model.engine", manifest=manifest) as runner:
        assert runner._state["runtime"].engine_host_code_allowed is True
    bare = make_manifest(engines=[{**trt_runtime.entry_dict(manifest.engines[0]), "options": {}}])
    with pytest.raises(RunnerError, match="engine_host_code_allowed is False"):
        TrtRunner(tmp_path / "model.engine", manifest=bare).activate()


def test_plan_loads_only_on_the_exact_version(tmp_path, monkeypatch, on_cpu):
    """The stand-in applies TensorRT's rule (every version field), the same one engine choice applies."""
    mods = install(monkeypatch, "10")
    manifest = _build(tmp_path, monkeypatch, "tensorrt")
    on_cpu(mods["10"])
    entry = manifest.engines[0]
    for installed, loads in [("10.16.0.1", True), ("10.16.0.2", False), ("10.17.0.1", False), ("10.16.0.1.0", True)]:
        mods["10"].__version__ = installed
        assert (engine_unusable_reason(entry, tmp_path, gpu_cc=(8, 6), installed={"tensorrt": installed})
                is None) is loads
        if loads:
            with TrtRunner(tmp_path / "model.engine", manifest=manifest):
                pass
        else:
            with pytest.raises(RunnerError, match=f"expecting library version {installed} got 10.16.0.1"):
                TrtRunner(tmp_path / "model.engine", manifest=manifest).activate()


def test_device_step_binds_once_and_only_enqueues(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "rtx")
    manifest = _build(tmp_path, monkeypatch, "tensorrt-rtx")
    on_cpu(mods["rtx"])
    x = np.random.default_rng(3).random((1, 3, 16, 16), dtype=np.float32)
    with TrtRunner(tmp_path / "model.engine", manifest=manifest) as runner:
        step = runner.device_step({"input": x})
        ctx = runner._state["context"]
        monkeypatch.setattr(ctx, "set_input_shape", lambda *a: pytest.fail("set_input_shape per step"))
        before = mods["rtx"].calls.count("execute_async_v3")
        for _ in range(3):
            step.run()
        assert mods["rtx"].calls.count("execute_async_v3") == before + 3
        np.testing.assert_array_equal(step.outputs["logits"].numpy(), _expected(x))
        assert step.min_warmup == runner.min_warmup == trt_runtime.RTX_MIN_WARMUP and "lazy" in step.note


from unetrt.runtime.engine_choice import engine_unusable_reason  # noqa: E402


def test_build_records_where_the_plan_runs(tmp_path, monkeypatch):
    install(monkeypatch, "rtx")
    rtx = _build(tmp_path, monkeypatch, "tensorrt-rtx", compute_capabilities=["sm86", "SM120"]).engines[0]
    assert rtx.compute_capabilities == ["SM86", "SM120"]
    install(monkeypatch, "10")
    std = _build(tmp_path, monkeypatch, "tensorrt", name="std.engine").engines[0]
    assert std.compute_capabilities == ["SM86"] and std.build_gpu["compute_capability"] == "8.6"
    assert engine_unusable_reason(std, tmp_path, gpu_cc=(8, 6), installed={"tensorrt": std.version}) is None


def test_measure_device_uses_events_on_the_runner_stream(tmp_path, monkeypatch, on_cpu):
    from unetrt.bench.timing import TimingPlan, measure_device

    mods = install(monkeypatch, "rtx")
    manifest = _build(tmp_path, monkeypatch, "tensorrt-rtx")
    on_cpu(mods["rtx"])
    recorded = []
    with TrtRunner(tmp_path / "model.engine", manifest=manifest) as runner:
        step = runner.device_step({"input": np.ones((1, 3, 16, 16), np.float32)})
        start, end = step.events()

        class Spy:
            def __init__(self, real, label):
                self.real, self.label = real, label

            def record(self, stream=None):
                recorded.append((self.label, stream))
                self.real.record(stream)

            def synchronize(self):
                self.real.synchronize()

            def elapsed_time(self, other):
                return 2.5  # ms, as a CUDA event pair would report

        step.events = lambda: (Spy(start, "start"), Spy(end, "end"))
        ticks = iter(range(1000))
        timing = measure_device(step, TimingPlan(warmup=2, iters=4), batch=1, clock=lambda: next(ticks) * 1e-3)
    assert timing.warmup == trt_runtime.RTX_MIN_WARMUP  # raised for RTX's lazy kernels
    assert timing.gpu.count == 4 and timing.gpu.p50 == pytest.approx(2.5)
    assert timing.end_to_end.count == 4 and timing.end_to_end.p50 == pytest.approx(1.0)
    assert {stream for _, stream in recorded} == {step.stream}  # the runner's stream, not the default one
    assert mods["rtx"].calls.count("execute_async_v3") == trt_runtime.RTX_MIN_WARMUP + 4


def test_inspect_opens_version_compatible_plans_with_detail(tmp_path, monkeypatch):
    from unetrt.artifacts.trt import inspect_engine

    mods = install(monkeypatch, "10")
    entry = trt_runtime.entry_dict(_build(tmp_path, monkeypatch, "tensorrt", version_compatible=True).engines[0])
    info = inspect_engine(tmp_path / "model.engine", entry, gpu=True)
    assert info["available"], info
    assert json.loads(info["json"])["Layers"] == [{"Name": "conv1", "LayerType": "Convolution"}]  # DETAILED
    bare = inspect_engine(tmp_path / "model.engine", {**entry, "options": {}}, gpu=True)
    assert not bare["available"] and "engine_host_code_allowed is False" in bare["reason"]
    _build(tmp_path, monkeypatch, "tensorrt", name="names.engine", detailed_profiling=False)
    assert json.loads(inspect_engine(tmp_path / "names.engine", {"flavour": "tensorrt"}, gpu=True)["json"]) == \
        {"Layers": ["conv1"]}
    assert mods["10"].ignored_loggers == 0
    assert inspect_engine(tmp_path / "model.engine", entry, gpu=False)["reason"].startswith("deserialising a plan")


def test_every_tensorrt_object_uses_the_process_logger():
    """A second logger is ignored by TensorRT ("new logger is ignored"): nothing but process_logger makes one."""
    import re
    from pathlib import Path

    import unetrt

    root = Path(unetrt.__file__).parent
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py") for i, line in
                 enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"\b(trt|tensorrt\w*)\.(Logger|ILogger)\(", line) and p.name != "trt.py"]
    assert offenders == []
    users = [p for p in root.rglob("*.py") if re.search(r"\.(Runtime|Builder)\(", p.read_text())]
    for path in users:
        assert "process_logger(" in path.read_text(), path


# --- contexts, profiles, device outputs, portability (stand-ins) ------------------------------------------

def test_each_captured_shape_has_its_own_context(tmp_path, monkeypatch, on_cpu):
    """A graph replayed after its context was rebound for another shape computes garbage (the stand-in
    models the context's device-side state): shapes A, B, A again must each replay on their own context."""
    mods = install(monkeypatch, "10")
    manifest = _build(tmp_path, monkeypatch, "tensorrt")
    on_cpu(mods["10"])
    rng = np.random.default_rng(4)
    a, b = rng.random((1, 3, 16, 32), dtype=np.float32), rng.random((2, 3, 32, 16), dtype=np.float32)
    with TrtRunner(tmp_path / "model.engine", cuda_graph=True, manifest=manifest) as runner:
        for x in (a, b, a, b):
            np.testing.assert_array_equal(runner.infer({"input": x})["logits"], _expected(x))
        contexts = [entry[3] for entry in runner._graphs.values()]
        assert len({id(c) for c in contexts}) == 2 and runner._state["context"] not in contexts


def test_the_fitting_profile_is_selected(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "10")
    monkeypatch.setattr(trt_builder, "_build_gpu", lambda: {"name": "Stand-in GPU", "compute_capability": "8.6"})
    profiles = [{"input": ShapeProfile((1, 3, 16, 16), (1, 3, 32, 32), (1, 3, 64, 64))},
                {"input": ShapeProfile((2, 3, 128, 128), (4, 3, 128, 128), (4, 3, 256, 256))}]
    info = build_engine(identity_onnx(tmp_path / "model.onnx"), tmp_path / "model.engine", profiles=profiles,
                        flavour="tensorrt").to_dict()
    manifest = make_manifest(engines=[{**info, "path": "model.engine"}])
    on_cpu(mods["10"])
    rng = np.random.default_rng(5)
    with TrtRunner(tmp_path / "model.engine", manifest=manifest) as runner:
        for shape, profile in (((1, 3, 32, 48), 0), ((3, 3, 128, 160), 1), ((1, 3, 16, 16), 0)):
            x = rng.random(shape, dtype=np.float32)
            np.testing.assert_array_equal(runner.infer({"input": x})["logits"], _expected(x))
            assert runner._state["context"].active_optimization_profile == profile
        with pytest.raises(RunnerError, match=r"no optimisation profile of model.engine admits input 2x3x32x32.*"
                                              r"1x3x16x16\.\.1x3x64x64, 2x3x128x128\.\.4x3x256x256"):
            runner.infer({"input": np.zeros((2, 3, 32, 32), np.float32)})


def test_device_outputs_are_handed_to_the_callers_stream_and_bf16_reaches_numpy(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "10")
    manifest = _build(tmp_path, monkeypatch, "tensorrt")
    devices = on_cpu(mods["10"])
    x = np.ones((1, 3, 16, 16), np.float32)
    with TrtRunner(tmp_path / "model.engine", manifest=manifest) as runner:
        out = runner.infer({"input": x}, to_host=False)["logits"]
        assert [id(t) for t in devices[-1].handed_over] == [id(out)]
        host = trt_runtime._host(torch.ones(2, dtype=torch.bfloat16) * 1.5, runner._note)
        assert host.dtype == np.float32 and host.tolist() == [1.5, 1.5]
        assert any("bfloat16 has no numpy equivalent" in n for n in runner.notes)
        fp8 = trt_runtime._host(torch.ones(2).to(torch.float8_e4m3fn), runner._note)
        assert fp8.dtype == np.float32


def test_device_step_replays_a_graph_on_standard_tensorrt(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "10")
    manifest = _build(tmp_path, monkeypatch, "tensorrt")
    on_cpu(mods["10"])
    x = np.random.default_rng(6).random((1, 3, 16, 16), dtype=np.float32)
    with TrtRunner(tmp_path / "model.engine", cuda_graph=True, manifest=manifest) as runner:
        step = runner.device_step({"input": x})
        before = mods["10"].calls.count("execute_async_v3")
        for _ in range(3):
            step.run()
        assert mods["10"].calls.count("execute_async_v3") == before  # replays, no enqueue
        assert len(runner._graphs) == 1 and step.note == "CUDA graph replay"
        np.testing.assert_array_equal(step.outputs["logits"].numpy(), _expected(x))
