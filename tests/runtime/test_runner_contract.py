"""One contract, every backend: the same cases for eager PyTorch, ONNX Runtime (FP32, FP16) and the GPU
backends (skipped without CUDA)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from unetrt.errors import InputError, MissingDependencyError, RunnerError
from unetrt.parity import FP16_TOLERANCE, FP32_TOLERANCE, compare
from unetrt.runtime import OrtRunner, TorchRunner, TrtRunner

ALIGN, CLASSES, IN_CHANNELS = 16, 2, 3  # as exported by conftest.export_dir

gpu = pytest.mark.gpu
BACKENDS = [
    pytest.param("torch-cpu", id="torch-cpu"),
    pytest.param("ort-cpu", id="ort-cpu"),
    pytest.param("ort-cpu-fp16", id="ort-cpu-fp16"),
    pytest.param("torch-cuda", id="torch-cuda", marks=gpu),
    pytest.param("torch-cuda-fp16", id="torch-cuda-fp16", marks=gpu),
    pytest.param("ort-cuda", id="ort-cuda", marks=gpu),
    pytest.param("ort-tensorrt", id="ort-tensorrt", marks=gpu),
    pytest.param("trt", id="trt", marks=[gpu, pytest.mark.trt]),
    pytest.param("trt-graph", id="trt-graph", marks=[gpu, pytest.mark.trt]),
]


def _engine(export_dir, tmp_path_factory):
    """Build a TensorRT engine for the GPU cases (needs TensorRT and a GPU)."""
    from unetrt.errors import MissingDependencyError
    from unetrt.exporter.trt_builder import ShapeProfile, build_engine

    path = tmp_path_factory.getbasetemp() / "runtime_model.engine"
    if not path.exists():
        profile = ShapeProfile((1, IN_CHANNELS, 16, 16), (2, IN_CHANNELS, 32, 48), (4, IN_CHANNELS, 128, 128))
        try:
            build_engine(export_dir / "model.onnx", path, profiles=[{"input": profile}])
        except MissingDependencyError as exc:
            pytest.skip(str(exc))
    return path


@pytest.fixture
def make_runner(request, export_dir, tmp_path_factory):
    """``make_runner()`` -> a new, inactive runner of the parametrised kind."""
    from unetrt.artifacts.manifest import Manifest

    kind = request.node.callspec.params["kind"]
    manifest = Manifest.read(export_dir)
    ckpt = manifest.model.checkpoint.path

    def make():
        try:
            return build()
        except MissingDependencyError as exc:  # e.g. onnxruntime without the CUDA/TensorRT providers
            if kind in ("torch-cpu", "ort-cpu", "ort-cpu-fp16"):
                raise
            pytest.skip(str(exc))

    def build():
        if kind.startswith("torch"):
            device = "cuda" if "cuda" in kind else "cpu"
            return TorchRunner(ckpt, device=device, precision="fp16" if kind.endswith("fp16") else "fp32",
                               manifest=manifest)
        if kind.startswith("ort"):
            providers = kind.split("-")[1]
            name = "model_fp16.onnx" if kind.endswith("fp16") else "model.onnx"
            return OrtRunner(export_dir / name, providers=providers, manifest=manifest)
        return TrtRunner(_engine(export_dir, tmp_path_factory), cuda_graph=kind == "trt-graph", manifest=manifest)

    return make


def _tolerance(kind):
    return FP16_TOLERANCE if "fp16" in kind else FP32_TOLERANCE


@pytest.mark.parametrize("kind", BACKENDS)
def test_metadata_and_outputs(kind, make_runner, sample):
    with make_runner() as runner:
        assert runner.is_active
        meta = runner.input_metadata
        assert list(meta) == ["input"]
        assert meta["input"].dtype == "float32" and meta["input"].shape == (None, IN_CHANNELS, None, None)
        assert list(runner.output_metadata) == ["logits"]
        out = runner.infer({"input": sample})
        assert list(out) == ["logits"]
        assert isinstance(out["logits"], np.ndarray) and out["logits"].dtype == np.float32
        assert out["logits"].shape == (2, CLASSES, 32, 48)
        assert runner.last_inference_time is not None and runner.last_inference_time > 0
        from_torch = runner.infer({"input": torch.from_numpy(sample)})["logits"]
        np.testing.assert_array_equal(from_torch, out["logits"])


@pytest.mark.parametrize("kind", BACKENDS)
def test_parity_with_eager(kind, make_runner, eager_model, sample):
    with torch.no_grad():
        ref = eager_model(torch.from_numpy(sample)).numpy()
    with make_runner() as runner:
        got = runner.infer({"input": sample})["logits"]
    parity = compare(ref, got, _tolerance(kind))
    assert parity, parity.reason


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("feed, words", [
    ({"input": np.zeros((IN_CHANNELS, 32, 32), np.float32)}, ["rank 3", "Nx3xHxW"]),
    ({"input": np.zeros((1, 1, 32, 32), np.float32)}, ["1 channel(s) instead of 3"]),
    ({"input": np.zeros((1, IN_CHANNELS, 32, 32), np.float64)}, ["dtype float64", "expected float32"]),
    ({"input": np.zeros((1, IN_CHANNELS, 32, 32), np.float16)}, ["dtype float16", "expected float32"]),
    ({"input": np.zeros((1, IN_CHANNELS, 0, 32), np.float32)}, ["H is 0 < 16", "H, W >= 16"]),
    ({"input": np.zeros((1, IN_CHANNELS, 32, 40), np.float32)}, [f"multiple of {ALIGN}", "align_pad"]),
    ({"image": np.zeros((1, IN_CHANNELS, 32, 32), np.float32)}, ["unknown input(s) ['image']", "'input'"]),
    ({}, ["missing input(s) ['input']"]),
], ids=["rank", "channels", "float64", "float16", "below-min", "unaligned", "unknown-name", "missing"])
def test_refuses_bad_inputs(kind, make_runner, feed, words):
    with make_runner() as runner:
        with pytest.raises(InputError) as info:
            runner.infer(feed)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    if "input" in feed and feed["input"].ndim == 4:
        assert f"H and W multiples of {ALIGN}" in message  # the admissible range is in the message


@pytest.mark.parametrize("kind", BACKENDS)
def test_lifecycle(kind, make_runner, sample):
    runner = make_runner()
    assert not runner.is_active
    with pytest.raises(RunnerError, match="before activate"):
        runner.infer({"input": sample})
    with pytest.raises(RunnerError, match="before activate"):
        runner.input_metadata  # noqa: B018 - property access is the test
    with runner as active:
        assert active is runner and runner.is_active
        first = runner.infer({"input": sample})["logits"]
    assert not runner.is_active
    with pytest.raises(RunnerError):
        runner.infer({"input": sample})
    runner.deactivate()  # twice is harmless
    runner.activate()
    try:
        np.testing.assert_array_equal(runner.infer({"input": sample})["logits"], first)
    finally:
        runner.deactivate()


@pytest.mark.parametrize("kind", BACKENDS)
def test_shared_by_threads(kind, make_runner):
    rng = np.random.default_rng(11)
    feeds = [rng.random((1, IN_CHANNELS, 16 * (1 + i % 2), 32), dtype=np.float32) for i in range(8)]
    with make_runner() as runner:
        expected = [runner.infer({"input": x})["logits"] for x in feeds]
        results: dict[int, np.ndarray] = {}
        errors: list[BaseException] = []

        def work(worker: int):
            try:
                for i in range(worker, len(feeds), 4):
                    results[i] = runner.infer({"input": feeds[i]})["logits"]
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    for i, ref in enumerate(expected):
        np.testing.assert_array_equal(results[i], ref)
