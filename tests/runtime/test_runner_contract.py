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
            return OrtRunner(export_dir / name, providers=providers, manifest=manifest,
                             trt_options=_ort_trt_options(tmp_path_factory) if providers == "tensorrt" else None)
        return TrtRunner(_engine(export_dir, tmp_path_factory), cuda_graph=kind == "trt-graph", manifest=manifest)

    return make


def _ort_trt_options(tmp_path_factory) -> dict:
    """ORT's TensorRT EP: one engine for every shape these tests use (a profile, cached), not a rebuild per
    new shape, whose different tactics would make results differ across shapes and activations."""
    shapes = {"min": f"1x{IN_CHANNELS}x16x16", "opt": f"2x{IN_CHANNELS}x32x48", "max": f"4x{IN_CHANNELS}x128x128"}
    options = {f"profile_{k}_shapes": f"input:{v}" for k, v in shapes.items()}
    return {**options, "engine_cache_path": str(tmp_path_factory.getbasetemp() / "ort_trt_cache")}


@pytest.fixture(autouse=True)
def _no_tf32():
    """FP32 parity means FP32: cuDNN and cuBLAS TF32 (PyTorch's cuDNN default) off for the CUDA cases."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _tolerance(kind):
    return FP16_TOLERANCE if "fp16" in kind else FP32_TOLERANCE


def _same(kind, got, expected):
    """Bit-identical for deterministic backends; within tolerance where a TensorRT build may pick other tactics."""
    if kind == "ort-tensorrt":
        parity = compare(expected, got, _tolerance(kind))
        assert parity, parity.reason
    else:
        np.testing.assert_array_equal(got, expected)


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
        _same(kind, from_torch, out["logits"])


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
    ({"input": np.zeros((1, IN_CHANNELS, 0, 32), np.float32)}, ["H is 0 < 16", "BELOW_MIN_RANGE"]),
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
        assert _range_words(kind).get(word, word) in message
    if "input" in feed and feed["input"].ndim == 4:
        assert f"H and W multiples of {ALIGN}" in message  # the admissible range is in the message


def _range_words(kind) -> dict[str, str]:
    """TensorRT runners describe the engine profile's range (min 16 = the export's minimum, max 128)."""
    return {"BELOW_MIN_RANGE": "H, W in [16, 128]" if kind.startswith("trt") else "H, W >= 16"}


def test_trt_range_words_match_the_profile_description():
    from unetrt.runtime.base import InputConstraint

    spec = InputConstraint("input", "float32", (None, IN_CHANNELS, None, None), (1, IN_CHANNELS, 16, 16),
                           (4, IN_CHANNELS, 128, 128), min_size=16, alignment=ALIGN)
    assert _range_words("trt")["BELOW_MIN_RANGE"] in spec.describe()
    assert spec.problem((1, IN_CHANNELS, 0, 32))[0] == "H is 0 < 16"


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
        _same(kind, runner.infer({"input": sample})["logits"], first)
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
        _same(kind, results[i], ref)


# --- ONNX Runtime provider options and I/O binding ------------------------------------------------------

def test_tensorrt_ep_options_keep_unprefixed_names(tmp_path):
    from unetrt.runtime.ort import _provider_options

    opts = _provider_options("TensorrtExecutionProvider",
                             {"fp16_enable": True, "trt_max_workspace_size": 1 << 30, "device_id": 1,
                              "user_compute_stream": "123", "has_user_compute_stream": True,
                              "engine_cache_path": str(tmp_path / "c")}, None)
    assert opts == {"trt_fp16_enable": True, "trt_max_workspace_size": 1 << 30, "device_id": 1,
                    "user_compute_stream": "123", "has_user_compute_stream": True,
                    "trt_engine_cache_path": str(tmp_path / "c"), "trt_engine_cache_enable": True}
    assert _provider_options("TensorrtExecutionProvider", None, None, stream=77) == \
        {"has_user_compute_stream": True, "user_compute_stream": "77"}


def test_cuda_ep_tf32_is_explicit():
    from unetrt.runtime.ort import _provider_options

    assert _provider_options("CUDAExecutionProvider", None, None) == {"use_tf32": 0}
    assert _provider_options("CUDAExecutionProvider", {"device_id": 0}, None, tf32=True) == {"use_tf32": 1}
    assert _provider_options("CUDAExecutionProvider", None, {"device_id": 0}, tf32=True, stream=5) == \
        {"device_id": 0, "use_tf32": 1, "user_compute_stream": "5"}


def test_ort_device_step_binds_buffers_once(export_dir, sample):
    """I/O binding with pre-allocated outputs (host buffers on the CPU provider; CUDA ones on a GPU)."""
    with OrtRunner(export_dir / "model.onnx", providers="cpu") as runner:
        expected = runner.infer({"input": sample})["logits"]
        step = runner.device_step({"input": sample})
        out = step.outputs["logits"]
        assert tuple(out.shape) == expected.shape and out.dtype == torch.float32
        ptr = out.data_ptr()
        out.zero_()
        step.run()
        assert out.data_ptr() == ptr  # ONNX Runtime wrote into our buffer
        np.testing.assert_array_equal(out.numpy(), expected)
        start, end = step.events()
        start.record(step.stream)
        step.run()
        end.record(step.stream)
        assert start.elapsed_time(end) > 0
