"""TrtRunner: what can be checked without a GPU (I/O and profile parsing, error paths), plus GPU-only
checks of CUDA-graph replay and device outputs."""

from __future__ import annotations

import enum
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from unetrt.errors import RunnerError
from unetrt.runtime import trt as trt_runtime
from unetrt.runtime.trt import TrtRunner, engine_io, rebuild_command

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

        import_tensorrt("auto")
    except ImportError:
        pytest.skip("needs tensorrt or tensorrt_rtx")
    fake_torch = SimpleNamespace(cuda=SimpleNamespace(set_device=lambda d: None,
                                                      get_device_name=lambda d: "Fake GPU"))
    monkeypatch.setattr(trt_runtime, "_cuda_torch", lambda path: fake_torch)
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

    engine = tmp_path / "model.engine"
    try:
        build_engine(export_dir / "model.onnx", engine,
                     profiles=[{"input": ShapeProfile((1, 3, 16, 16), (1, 3, 64, 64), (2, 3, 128, 128))}])
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(0)
    feeds = [rng.random(shape, dtype=np.float32) for shape in [(1, 3, 32, 32), (2, 3, 64, 48), (1, 3, 32, 32)]]
    with TrtRunner(engine) as plain, TrtRunner(engine, cuda_graph=True) as graphed:
        for x in feeds:
            np.testing.assert_allclose(graphed.infer({"input": x})["logits"], plain.infer({"input": x})["logits"],
                                       rtol=0, atol=1e-5)
        assert len(graphed._graphs) == 2  # one graph per shape
        on_device = graphed.infer({"input": torch.from_numpy(feeds[0]).cuda()}, to_host=False)["logits"]
        assert on_device.is_cuda and on_device.dtype == torch.float32
        with pytest.raises(Exception, match="W is 256 > 128"):
            plain.infer({"input": np.zeros((1, 3, 32, 256), np.float32)})
