"""One contract, every backend: the same cases for every name in the backend registry (eager PyTorch, ONNX
Runtime FP32 / FP16 / INT8, TensorRT), plus eager on CUDA and TensorRT with CUDA graphs. A backend that
cannot run here is skipped with the registry's own reason (``Backend.reason_unavailable``)."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest
import torch

from unetrt.bench.parity import parity_row
from unetrt.errors import InputError, MissingDependencyError, RunnerError
from unetrt.runtime import backends as registry
from unetrt.runtime import OrtRunner, load

ALIGN, CLASSES, IN_CHANNELS = 16, 2, 3  # as exported by conftest.export_dir

gpu = pytest.mark.gpu
#: Cases beyond the registry's names: (id, registered backend, extra runner/load arguments).
VARIANTS = [("eager-cuda", "eager", {"device": "cuda"}), ("trt-graph", "trt", {"cuda_graph": True})]


def _marks(backend: registry.Backend, extra: dict) -> list:
    marks = [gpu] if backend.gpu_only or extra.get("device") == "cuda" or extra.get("cuda_graph") else []
    # tests/conftest.py skips a gpu case of a registered backend with the registry's reason
    return marks + [pytest.mark.backend(backend.name)] + ([pytest.mark.trt] if backend.kind == "engine" else [])


def _cases() -> list:
    cases = [pytest.param(b.name, id=b.name, marks=_marks(b, {})) for b in registry.backends()]
    return cases + [pytest.param(case, id=case, marks=_marks(registry.get(name), extra))
                    for case, name, extra in VARIANTS]


BACKENDS = _cases()


def _backend(kind: str) -> tuple[registry.Backend, dict]:
    for case, name, extra in VARIANTS:
        if kind == case:
            return registry.get(name), dict(extra)
    return registry.get(kind), {}


def _engine(export_dir, tmp_path_factory, precision: str):
    """Build a TensorRT engine of ``precision`` for the GPU cases (needs TensorRT and a GPU)."""
    from unetrt.exporter.trt_builder import ShapeProfile, build_engine

    source = {"fp32": "model.onnx", "fp16": "model_fp16.onnx", "int8": "model_int8.onnx"}[precision]
    path = tmp_path_factory.getbasetemp() / f"runtime_model_{precision}.engine"
    if not path.exists():
        profile = ShapeProfile((1, IN_CHANNELS, 16, 16), (2, IN_CHANNELS, 32, 48), (4, IN_CHANNELS, 128, 128))
        from tests.runtime.conftest import gpu_flavour_or_skip

        flavour = gpu_flavour_or_skip()
        try:
            build_engine(export_dir / source, path, precision=precision, profiles=[{"input": profile}],
                         flavour=flavour)
        except MissingDependencyError as exc:
            pytest.skip(str(exc))
    return path


@pytest.fixture(scope="module")
def contract_dir(export_dir, tmp_path_factory):
    """``export_dir`` plus both INT8 forms (``model_int8.onnx``, ``model_int8_cpu.onnx``) in its manifest.

    Calibrated on uniform [0, 1) inputs like the contract's samples; the bars are the standard INT8
    ones, so the files are what ``unet-export --int8 --int8-cpu`` would accept.
    """
    from unetrt.artifacts.manifest import Manifest
    from unetrt.exporter.int8 import quantize_int8
    from unetrt.fileio import sha256_file
    from unetrt.models import create_model

    out = tmp_path_factory.mktemp("contract") / "export"
    shutil.copytree(export_dir, out)
    manifest = Manifest.read(out)
    model = create_model("milesial", width=4)
    model.load_state_dict(torch.load(manifest.model.checkpoint.path, weights_only=True))
    rng = np.random.default_rng(5)
    calibration = [rng.random((1, IN_CHANNELS, 32, 48), dtype=np.float32) for _ in range(4)]
    with torch.no_grad():
        refs = [model.eval()(torch.from_numpy(x)).numpy() for x in calibration]
    quantize_int8(out / "model.onnx", out / "model_int8.onnx", calibration=calibration, eval_feeds=calibration,
                  references=refs, labels=[f"random_{i}" for i in range(4)],
                  cpu_path=out / "model_int8_cpu.onnx", quantizer="onnxruntime")
    data = json.loads((out / "manifest.json").read_text())
    files = {name: sha256_file(out / name) for name in ("model_int8.onnx", "model_int8_cpu.onnx")}
    data["artifacts"] += [{"path": n, "sha256": s, "bytes": (out / n).stat().st_size} for n, s in files.items()]
    data["int8"] = {"path": "model_int8.onnx", "sha256": files["model_int8.onnx"],
                    "cpu": {"path": "model_int8_cpu.onnx", "sha256": files["model_int8_cpu.onnx"]}}
    Manifest.with_defaults(data).write(out)
    return out


@pytest.fixture
def make_runner(request, contract_dir, tmp_path_factory):
    """``make_runner()`` -> a new, inactive runner of the parametrised case.

    Files come from the export through :func:`load` with the backend's registered name; engines (not in
    the export, which has none) are built here and opened through the registry entry.
    """
    from unetrt.artifacts.manifest import Manifest

    backend, extra = _backend(request.node.callspec.params["kind"])
    reason = backend.reason_unavailable()
    if reason is not None:
        pytest.skip(f"{backend.name}: {reason}")
    if extra.get("device") == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"{backend.name} on CUDA: needs a CUDA GPU (none visible)")
    if backend.name == "ort-trt":
        extra["trt_options"] = _ort_trt_options(tmp_path_factory)

    def make():
        if backend.kind == "engine":
            manifest = Manifest.read(contract_dir)
            return backend.open(_engine(contract_dir, tmp_path_factory, backend.precision), manifest=manifest,
                                **extra)
        device = extra.pop("device", "cuda" if backend.gpu_only else "cpu")
        return load(contract_dir, backend=backend.name, device=device, **extra)

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


def test_every_registered_backend_is_a_case():
    ids = {p.id for p in BACKENDS}
    assert set(registry.names()) <= ids
    for name in ("trt-fp16", "trt-int8", "ort-cuda-fp16", "ort-int8", "ort-int8-cpu"):
        assert name in ids


def _same(kind, got, expected):
    """Bit-identical for deterministic backends; within tolerance where a TensorRT build may pick other tactics."""
    backend, _ = _backend(kind)
    if backend.name == "ort-trt":
        row = parity_row(expected, got, backend.precision)
        assert row["parity_passed"], row["parity_reason"]
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
    row = parity_row(ref, got, _backend(kind)[0].precision)  # the bench's bars for the backend's precision
    assert row["parity_passed"], row["parity_reason"]


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
    return {"BELOW_MIN_RANGE": "H, W in [16, 128]" if _backend(kind)[0].kind == "engine" else "H, W >= 16"}


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
                              "user_compute_stream": "123", "engine_cache_path": str(tmp_path / "c")}, None)
    assert opts == {"trt_fp16_enable": True, "trt_max_workspace_size": 1 << 30, "device_id": 1,
                    "user_compute_stream": "123", "trt_engine_cache_path": str(tmp_path / "c"), "trt_engine_cache_enable": True}
    assert _provider_options("TensorrtExecutionProvider", None, None, stream=77) == \
        {"user_compute_stream": "77"}
    for key in ("has_user_compute_stream", "trt_has_user_compute_stream"):
        with pytest.raises(RunnerError, match=r"is not an ONNX Runtime TensorRT EP option \| expected "
                                              r"user_compute_stream alone"):
            _provider_options("TensorrtExecutionProvider", {key: True}, None)


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
