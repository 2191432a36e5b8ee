"""``unetrt triton --build-on-start``: the repository ships ONNX + the engine entry, ``unetrt build REPO`` builds
the plan where the server runs; the Kubernetes example runs it in an init container."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from unetrt.cli import main as cli

from tests.helpers import trt_available

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "triton" / "kubernetes-build-on-start.yaml"


def _with_standin_engine(export_dir: Path, tmp_path: Path, monkeypatch) -> Path:
    """A copy of ``export_dir`` with a stand-in TensorRT 10.16 plan listed in its manifest."""
    from unetrt.artifacts.manifest import EngineEntry, Manifest
    from unetrt.exporter import trt_builder
    from unetrt.exporter.trt_builder import ShapeProfile, build_engine

    from tests.fakes.trt_standins import install

    install(monkeypatch, "10")
    monkeypatch.setattr(trt_builder, "_build_gpu", lambda: {"name": "Stand-in GPU", "compute_capability": "8.6"})
    folder = tmp_path / "export"
    shutil.copytree(export_dir, folder)
    info = build_engine(folder / "model.onnx", folder / "model.engine", flavour="tensorrt", version_compatible=True,
                        profiles=[{"input": ShapeProfile((1, 3, 16, 16), (2, 3, 64, 64), (4, 3, 128, 128))}]).to_dict()
    manifest = Manifest.read(folder)
    manifest.engines = [EngineEntry(**{**info, "path": "model.engine", "onnx": "model.onnx"})]
    manifest.write(folder)
    return folder


def test_repository_ships_onnx_and_unetrt_build_writes_the_plan(aligned_export, tmp_path, monkeypatch):
    import sys

    from unetrt.serve.configs import read_config

    export = _with_standin_engine(aligned_export, tmp_path, monkeypatch)
    (export / "model.engine").unlink()  # the plan itself is not needed: the server builds its own
    repo = tmp_path / "repo"
    res = CliRunner().invoke(cli, ["triton", str(export), "-o", str(repo), "--platform", "tensorrt",
                                   "--build-on-start"])
    assert res.exit_code == 0, res.output
    model = repo / "unet"
    assert not (model / "1" / "model.plan").exists()
    assert sorted(p.name for p in (model / "export").iterdir()) == ["manifest.json", "model.onnx"]
    assert read_config(model).platform == "tensorrt_plan" and read_config(model).max_batch_size == 4
    index = json.loads((repo / "unetrt_repository.json").read_text())
    assert index["build_on_start"] == [{"model": "unet", "export": "unet/export", "engine": "model.engine",
                                        "precision": "fp32", "plan": "unet/1/model.plan"}]
    assert any("unetrt build REPO" in n for n in index["notes"])

    sys.modules["tensorrt"].__version__ = "10.17.0.1"  # the serving image's TensorRT
    res = CliRunner().invoke(cli, ["build", str(repo)])
    assert res.exit_code == 0, res.output
    assert "built unet/1/model.plan: tensorrt 10.17.0.1" in res.output
    header = json.loads((model / "1" / "model.plan").read_bytes()[4:])
    assert header["version"] == "10.17.0.1" and "VERSION_COMPATIBLE" in header["flags"]
    assert header["profiles"] == [{"input": [[1, 3, 16, 16], [2, 3, 64, 64], [4, 3, 128, 128]]}]

    res = CliRunner().invoke(cli, ["build", str(repo), "--precision", "fp16"])
    assert res.exit_code == 1 and "--precision/--compute-capability given for a Triton repository" in res.output


def test_build_on_start_refusals(aligned_export, tmp_path):
    res = CliRunner().invoke(cli, ["triton", str(aligned_export), "-o", str(tmp_path / "r"), "--platform", "onnx",
                                   "--build-on-start"])
    assert res.exit_code == 1 and "--build-on-start with --platform onnx" in res.output
    res = CliRunner().invoke(cli, ["triton", str(aligned_export), "-o", str(tmp_path / "r"), "--platform",
                                   "tensorrt", "--build-on-start"])
    assert res.exit_code == 1 and "lists no TensorRT engine for --build-on-start" in res.output
    assert not (tmp_path / "r").exists() and "Traceback" not in res.output
    plain = tmp_path / "plain"
    CliRunner().invoke(cli, ["triton", str(aligned_export), "-o", str(plain), "--platform", "onnx"])
    res = CliRunner().invoke(cli, ["build", str(plain)])
    assert res.exit_code == 1 and "lists no plan to build on start" in res.output


@pytest.mark.slow
@pytest.mark.trt
@pytest.mark.skipif(not trt_available(), reason="needs tensorrt or tensorrt_rtx to build the engine")
def test_real_plan_built_on_start(demo_export, tmp_path):
    """With the real TensorRT-RTX of this machine: repository without a plan, ``unetrt build REPO`` writes one."""
    from unetrt.artifacts.trt import plan_problem

    repo = tmp_path / "repo"
    assert CliRunner().invoke(cli, ["triton", str(demo_export), "-o", str(repo), "--platform", "tensorrt",
                                    "--build-on-start"]).exit_code == 0
    res = CliRunner().invoke(cli, ["build", str(repo)])
    assert res.exit_code == 0, res.output
    plan = repo / "unet" / "1" / "model.plan"
    assert plan.is_file() and plan_problem(plan) is None and plan.read_bytes()[:4] in (b"ftrt", b"vtrt")


def test_kubernetes_init_container_builds_the_plan_in_the_serving_image():
    kv = pytest.importorskip("kubernetes_validate")
    yaml = pytest.importorskip("yaml")
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    for doc in docs:
        kv.validate(doc, "1.30.0", strict=True)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (init,), (server,) = pod["initContainers"], pod["containers"]
    assert init["image"] == server["image"]  # the plan is built by the server image's TensorRT
    script = " ".join(init["command"] + init.get("args", []))
    assert "unetrt build /models" in script
    assert init["resources"]["limits"]["nvidia.com/gpu"] == 1
    mounts = {m["mountPath"]: m for m in init["volumeMounts"]}
    assert not mounts["/models"].get("readOnly") and mounts["/repository"]["readOnly"] is True
    server_mounts = {m["mountPath"]: m for m in server["volumeMounts"]}
    assert server_mounts["/models"]["name"] == mounts["/models"]["name"] and server_mounts["/models"]["readOnly"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/models"]["name"]]  # each pod builds for its own node's GPU
    assert "--model-repository=/models" in server["args"]
    dockerfile = (EXAMPLE.parent / "Dockerfile").read_text()
    assert "FROM nvcr.io/nvidia/tritonserver:" in dockerfile and "unetrt" in dockerfile
