"""``unetrt triton``: the repository layout, every config.pbtxt parsed back into ``ModelConfig``, TensorRT
plan dims against the engine profile, and bad input (one line, exit != 0, nothing written)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.helpers import trt_available
from unetrt.cli import main as cli


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_line(res) -> str:
    assert res.exit_code != 0
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


@pytest.mark.skipif(not trt_available(), reason="needs tensorrt or tensorrt_rtx to build the engine")
def test_platform_all_configs_parse_and_plan_dims_match_profile(demo_export, tmp_path):
    from tritonclient.grpc import model_config_pb2 as pb

    from unetrt.artifacts.manifest import Manifest
    from unetrt.serve.configs import read_config

    repo = tmp_path / "repo"
    res = _run("triton", demo_export, "-o", repo, "--platform", "all", "--with-preprocess", "--instances", "2")
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in repo.iterdir() if p.is_dir())
    assert names == ["unet", "unet_image", "unet_onnx", "unet_postprocess", "unet_preprocess", "unet_tensorrt"]
    configs = {n: read_config(repo / n) for n in names}
    assert all(isinstance(c, pb.ModelConfig) and c.name == n for n, c in configs.items())
    engine = Manifest.read(demo_export).engines[0]
    profile = engine.profiles[0]["input"]
    trt = configs["unet_tensorrt"]
    assert trt.platform == "tensorrt_plan" and (repo / "unet_tensorrt" / "1" / "model.plan").is_file()
    assert trt.max_batch_size == profile["max"][0]
    expected = [d if lo == hi else -1 for d, lo, hi in zip(engine.io[0]["shape"][1:], profile["min"][1:],
                                                              profile["max"][1:])]
    assert list(trt.input[0].dims) == expected == [3, -1, -1]
    assert trt.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU and trt.instance_group[0].count == 2
    onnx = configs["unet_onnx"]
    assert onnx.platform == "onnxruntime_onnx" and (repo / "unet_onnx" / "1" / "model.onnx").is_file()
    assert not onnx.optimization.execution_accelerators.gpu_execution_accelerator  # CPU: no TensorRT EP
    py = configs["unet"]
    assert py.backend == "python" and py.dynamic_batching.max_queue_delay_microseconds == 100
    assert (repo / "unet" / "1" / "model.py").is_file() and (repo / "unet" / "1" / "manifest.json").is_file()
    steps = [s.model_name for s in configs["unet_image"].ensemble_scheduling.step]
    assert steps == ["unet_preprocess", "unet", "unet_postprocess"]
    index = json.loads((repo / "unetrt_repository.json").read_text())
    assert index["models"]["tensorrt"] == "unet_tensorrt" and any("TensorRT-RTX" in n for n in index["notes"])
    assert not list(tmp_path.glob(".repo.*"))  # no staging directory left


@pytest.mark.skipif(not trt_available(), reason="needs tensorrt or tensorrt_rtx to build the engine")
def test_max_batch_above_the_engine_profile(demo_export, tmp_path):
    line = _one_line(_run("triton", demo_export, "-o", tmp_path / "r", "--platform", "tensorrt", "--max-batch", "64"))
    assert "exceeds the engine profile's max batch" in line and not list(tmp_path.iterdir())


def test_onnx_gpu_config_uses_tensorrt_accelerator_fp16(aligned_export, tmp_path):
    from unetrt.serve.repository import write_repository

    plan = write_repository(aligned_export, tmp_path / "r", platforms="onnx", device="gpu", max_batch=4,
                            dynamic_batching=False)
    config = plan.configs["unet"]
    acc = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert acc.name == "tensorrt" and acc.parameters["precision_mode"] == "FP16"
    assert config.max_batch_size == 4 and not config.HasField("dynamic_batching")
    assert json.loads(config.parameters["unetrt.manifest"].string_value)["input"]["alignment"] == 16


def test_no_engine_for_tensorrt(aligned_export, tmp_path):
    line = _one_line(_run("triton", aligned_export, "-o", tmp_path / "r", "--platform", "tensorrt"))
    assert "no TensorRT engine for --platform tensorrt" in line
    assert not (tmp_path / "r").exists() and not list(tmp_path.iterdir())


def test_non_empty_repo_needs_force(aligned_export, tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "keep.txt").write_text("mine")
    assert "is not empty" in _one_line(_run("triton", aligned_export, "-o", repo))
    assert [p.name for p in repo.iterdir()] == ["keep.txt"]
    res = _run("triton", aligned_export, "-o", repo, "--force")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in repo.iterdir()) == ["unet", "unetrt_repository.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_repo_may_not_overlap_the_export(aligned_export):
    for target in (aligned_export, aligned_export / "repo", aligned_export.parent):
        line = _one_line(_run("triton", aligned_export, "-o", target, "--force"))
        assert "overlaps the export directory" in line
    assert (aligned_export / "manifest.json").is_file() and not (aligned_export / "repo").exists()


@pytest.mark.parametrize("name", ["bad name", "../up", ".hidden", "a/b", ""])
def test_name_triton_rejects(aligned_export, tmp_path, name):
    line = _one_line(_run("triton", aligned_export, "-o", tmp_path / "r", "--name", name))
    assert "cannot be used in a Triton repository" in line
    assert not list(tmp_path.iterdir())


def test_missing_extra_is_one_line(aligned_export, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tritonclient.grpc.model_config_pb2", None)
    line = _one_line(_run("triton", aligned_export, "-o", tmp_path / "r"))
    assert "pip install 'unetrt[serve]'" in line and not list(tmp_path.iterdir())
    monkeypatch.setitem(sys.modules, "pytriton", None)
    from unetrt.serve.server import free_port

    # whatever holds the default ports (8000-8002) or a given one, the missing extra is what is said
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = [busy.getsockname()[1], free_port(), free_port()]
        line = _one_line(_run("serve", aligned_export, "--http-port", ports[0], "--grpc-port", ports[1],
                              "--metrics-port", ports[2]))
        assert "pip install 'unetrt[serve]'" in line
        line = _one_line(_run("serve", aligned_export))
        assert "pip install 'unetrt[serve]'" in line


def test_import_unetrt_without_serving_packages():
    code = ("import sys\n"
            "for m in ('tritonclient', 'pytriton', 'google.protobuf.text_format'): sys.modules[m] = None\n"
            "import unetrt, unetrt.serve, unetrt.cli, unetrt.runtime\n"
            "from unetrt.serve import write_repository\n"
            "from unetrt.errors import MissingDependencyError\n"
            "try:\n    write_repository('nowhere', 'r')\nexcept Exception as e: print(type(e).__name__)\n"
            "from unetrt.serve.client import TritonClient\n"
            "try:\n    TritonClient('http://127.0.0.1:1')\nexcept MissingDependencyError as e: print('missing', e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "missing the Triton HTTP client needs tritonclient" in res.stdout


def test_every_copy_is_checked_against_its_sha256(aligned_export, tmp_path):
    """A file changed after export is refused (nothing written), whichever platform copies it."""
    import shutil

    export = tmp_path / "export"
    shutil.copytree(aligned_export, export)
    with open(export / "model.onnx", "ab") as f:
        f.write(b"\0")
    for platform in ("python", "onnx"):
        line = _one_line(_run("triton", export, "-o", tmp_path / "r", "--platform", platform))
        assert "model.onnx does not match its sha256 in the manifest" in line and "re-export" in line
        assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    shutil.copy2(aligned_export / "model.onnx", export / "model.onnx")
    res = _run("triton", export, "-o", tmp_path / "r", "--platform", "python,onnx")
    assert res.exit_code == 0, res.output


def test_read_only_directory_is_one_line(aligned_export, tmp_path):
    import os

    if os.geteuid() == 0:  # root writes through file modes: use a directory no one may create entries in
        parent = "/sys"
        if os.path.isdir(parent) and os.access(parent, os.W_OK):
            try:
                os.mkdir(os.path.join(parent, "unetrt-probe"))
            except OSError:
                pass
            else:
                os.rmdir(os.path.join(parent, "unetrt-probe"))
                pytest.skip("no read-only directory on this machine")
        target = os.path.join(parent, "unetrt-repo", "r")
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        target = ro / "r"
    line = _one_line(_run("triton", aligned_export, "-o", target))
    # refused up front (os.access) or, where access() says yes but mkdir is denied (root on /sys), at staging
    assert str(target) in line and "choose another -o" in line
    assert "is not writable" in line or "cannot write the repository" in line


def test_repository_path_over_255_characters_is_one_line(aligned_export, tmp_path):
    line = _one_line(_run("triton", aligned_export, "-o", tmp_path / ("r" * 300)))
    assert "cannot be used: File name too long" in line and "255 characters" in line
    assert not list(tmp_path.iterdir())


def test_sigterm_while_writing_keeps_the_old_repository_and_no_staging(aligned_export, tmp_path, monkeypatch):
    """SIGTERM arriving mid-write (here: as the configs are validated) exits 143 in one line; the repository
    written before is untouched and no staging directory is left beside it."""
    import os
    import signal

    from unetrt.serve import layout

    repo = tmp_path / "repo"
    assert _run("triton", aligned_export, "-o", repo).exit_code == 0
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    check_all = layout._check_all

    def terminated_meanwhile(stage, plan):
        # with SIGTERM's default action the signal would end pytest itself: say so instead
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "unetrt triton does not handle SIGTERM"
        os.kill(os.getpid(), signal.SIGTERM)
        check_all(stage, plan)

    monkeypatch.setattr(layout, "_check_all", terminated_meanwhile)
    res = _run("triton", aligned_export, "-o", repo, "--force", "--platform", "python,onnx")
    assert res.exit_code == 143, res.output
    assert "terminated" in _one_line(res).lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before
