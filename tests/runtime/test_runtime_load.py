"""``load()``: backend choice by file type and export directory, manifest sha256 checks, notes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from unetrt.errors import MissingDependencyError, RunnerError
from unetrt.models import create_model
from unetrt.runtime import OrtRunner, TorchRunner, TrtRunner, load
from unetrt.runtime import loader as loader_mod
from unetrt.runtime.ort import resolve_providers

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks CPU-only behaviour")


@pytest.fixture
def export_copy(export_dir, tmp_path):
    """A private copy of the session export (tests may tamper with it)."""
    target = tmp_path / "export"
    shutil.copytree(export_dir, target)
    return target


def _manifest(directory):
    return json.loads((directory / "manifest.json").read_text())


@no_cuda
def test_directory_on_cpu_picks_fp32_onnx(export_dir):
    runner = load(export_dir)
    assert isinstance(runner, OrtRunner) and runner.path.name == "model.onnx"
    assert runner.manifest.model.arch == "milesial"
    assert "chose model.onnx (ort)" in runner.notes
    fp16 = load(export_dir, precision="fp16")
    assert fp16.path.name == "model_fp16.onnx"


def test_files_by_type(export_dir):
    onnx_runner = load(export_dir / "model.onnx", device="cpu")
    assert isinstance(onnx_runner, OrtRunner) and onnx_runner.manifest is not None
    torch_runner = load(export_dir, backend="torch", device="cpu")
    assert isinstance(torch_runner, TorchRunner)
    module_runner = load(create_model("milesial", width=4), device="cpu")
    assert isinstance(module_runner, TorchRunner)
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    with onnx_runner, torch_runner:
        np.testing.assert_allclose(onnx_runner.infer({"input": x})["logits"],
                                   torch_runner.infer({"input": x})["logits"], atol=1e-4)
        assert torch_runner.input_constraints["input"].alignment == 16  # from the manifest


def test_onnx_without_manifest_uses_metadata_or_graph(export_dir, tmp_path):
    shutil.copy(export_dir / "model.onnx", tmp_path / "model.onnx")
    with load(tmp_path / "model.onnx", device="cpu") as runner:
        assert runner.manifest is None
        assert any("no manifest.json" in n for n in runner.notes)
        assert any("metadata_props" in n for n in runner.notes)
        assert runner.input_constraints["input"].alignment == 16
    proto = onnx.load(export_dir / "model.onnx")
    del proto.metadata_props[:]
    bare = tmp_path / "bare" / "model.onnx"
    bare.parent.mkdir()
    onnx.save(proto, bare)
    with load(bare, device="cpu") as runner:
        assert any("graph's dims only" in n for n in runner.notes)
        assert runner.input_constraints["input"].alignment == 1


def test_sha_mismatch_is_refused(export_copy):
    with open(export_copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    for target in (export_copy, export_copy / "model.onnx"):
        with pytest.raises(RunnerError, match="manifest does not match the model file model.onnx") as info:
            load(target, device="cpu")
        assert "re-export" in str(info.value)
    assert load(export_copy / "model.onnx", device="cpu", verify=False).manifest is not None


def test_checkpoint_needs_an_architecture(export_dir, tmp_path):
    ckpt = tmp_path / "weights.pth"
    shutil.copy(_manifest(export_dir)["model"]["checkpoint"]["path"], ckpt)
    with pytest.raises(RunnerError, match="bare checkpoint"):
        load(ckpt, device="cpu").activate()
    with load(ckpt, device="cpu", arch="milesial", model_kwargs={"width": 4}) as runner:
        assert runner.infer({"input": np.zeros((1, 3, 16, 16), np.float32)})["logits"].shape == (1, 2, 16, 16)


def test_checkpoint_beside_a_manifest_is_verified(export_copy):
    ckpt = export_copy / "weights.pth"
    shutil.copy(_manifest(export_copy)["model"]["checkpoint"]["path"], ckpt)
    assert isinstance(load(ckpt, device="cpu"), TorchRunner)
    torch.save(create_model("milesial", width=4).state_dict(), ckpt)  # other weights
    with pytest.raises(RunnerError, match="manifest does not match the model file weights.pth"):
        load(ckpt, device="cpu")


def test_bad_arguments(export_dir, tmp_path):
    (tmp_path / "model.xyz").write_bytes(b"")
    with pytest.raises(RunnerError, match="unknown model file type"):
        load(tmp_path / "model.xyz")
    with pytest.raises(RunnerError, match="cannot run a .onnx"):
        load(export_dir / "model.onnx", backend="trt")
    with pytest.raises(RunnerError, match="does not exist"):
        load(tmp_path / "missing.onnx")
    with pytest.raises(RunnerError, match="no manifest.json"):
        load(tmp_path)
    with pytest.raises(RunnerError, match="precision"):
        load(export_dir / "model.onnx", precision="fp16")
    with pytest.raises(RunnerError, match="backend"):
        load(export_dir, backend="tensorflow")


@no_cuda
def test_cuda_requests_on_a_cpu_machine(export_dir):
    with pytest.raises(RunnerError, match="no CUDA GPU"):
        load(export_dir, device="cuda")
    with pytest.raises(RunnerError, match="no TensorRT engine"):
        load(export_dir, backend="trt")
    with pytest.raises(RunnerError, match="fp16"):
        TorchRunner(create_model("milesial", width=4), precision="fp16")


def test_engine_preferred_on_a_gpu(export_copy, monkeypatch, add_artifact):
    pytest.importorskip("tensorrt_rtx")
    (export_copy / "model.engine").write_bytes(b"plan")
    add_artifact(export_copy, "model.engine", "engines", flavour="tensorrt-rtx", precision="fp32")
    monkeypatch.setattr(loader_mod, "_cuda", lambda: True)
    monkeypatch.setattr("unetrt.runtime.engine_choice.probe_gpu_cc", lambda device=0: (8, 6))
    runner = load(export_copy)
    assert isinstance(runner, TrtRunner) and runner.path.name == "model.engine"
    assert isinstance(load(export_copy, device="cpu"), OrtRunner)


def test_engine_of_a_missing_flavour_falls_back_to_onnx(export_copy, monkeypatch, add_artifact):
    pytest.importorskip("tensorrt_rtx")
    import unetrt.artifacts.trt as trt_support

    real = trt_support.import_tensorrt

    def missing(flavour="auto"):  # TensorRT-RTX installed, standard TensorRT not
        if flavour == "tensorrt":
            raise MissingDependencyError(f"{flavour} not installed")
        return real("tensorrt-rtx" if flavour == "auto" else flavour)

    (export_copy / "model.engine").write_bytes(b"plan")
    add_artifact(export_copy, "model.engine", "engines", flavour="tensorrt", precision="fp32")
    monkeypatch.setattr(trt_support, "import_tensorrt", missing)
    monkeypatch.setattr(loader_mod, "_cuda", lambda: True)
    runner = load(export_copy)
    # no CUDA provider in this onnxruntime: the ONNX runs on the CPU provider, where FP32 is preferred
    assert isinstance(runner, OrtRunner) and runner.path.name == "model.onnx", runner.notes
    assert any("model.engine skipped: tensorrt is not installed" in n for n in runner.notes), runner.notes


def test_provider_names():
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    assert resolve_providers("tensorrt") == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                             "CPUExecutionProvider"]
    assert resolve_providers(["cuda", "CPUExecutionProvider"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(RunnerError, match="unknown ONNX Runtime provider"):
        resolve_providers("rocm-ish")


def test_unavailable_provider_names_the_extra(export_dir):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this ONNX Runtime has the CUDA provider")
    with pytest.raises(MissingDependencyError, match=r"unetrt\[gpu\]"):
        OrtRunner(export_dir / "model.onnx", providers="cuda")
