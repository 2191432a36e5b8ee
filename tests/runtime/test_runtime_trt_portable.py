"""Engines that travel: hardware-compatible, version-compatible and weight-stripped plans (recorded in the
manifest, honoured by engine choice and the runner), ``unetrt build`` and ``unetrt refit``.

Stand-ins (tests/fakes) play the GPU parts; one test rebuilds a real TensorRT-RTX plan on this CPU."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from unetrt.artifacts.engine_entry import EngineEntry
from unetrt.artifacts.manifest import Manifest
from unetrt.cli import main
from unetrt.errors import EngineBuildError, RunnerError
from unetrt.exporter import trt_builder
from unetrt.exporter.trt_builder import ShapeProfile, build_engine
from unetrt.fileio import sha256_file
from unetrt.runtime import refit as refit_module
from unetrt.runtime import trt as trt_runtime
from unetrt.runtime.engine_choice import engine_unusable_reason
from unetrt.runtime.trt import TrtRunner

from tests.fakes.cuda_standin import CpuDevice
from tests.fakes.trt_standins import identity_onnx, install
from tests.helpers import make_manifest

PROFILES = [{"input": ShapeProfile((1, 3, 16, 16), (1, 3, 32, 32), (2, 3, 64, 64))}]


def _expected(x):
    return np.stack([(k + 1) * x[:, k % 3] for k in range(3)], axis=1)


def _export(tmp_path, monkeypatch, flavour="tensorrt", **kw) -> Manifest:
    """An export folder with model.onnx (one initializer) and a stand-in plan built with ``kw``; manifest written."""
    monkeypatch.setattr(trt_builder, "_build_gpu", lambda: {"name": "Stand-in GPU", "compute_capability": "8.6"})
    onnx_path = identity_onnx(tmp_path / "model.onnx", weights=True)
    if flavour == "tensorrt-rtx":
        kw.setdefault("compute_capabilities", ["SM86"])
    info = build_engine(onnx_path, tmp_path / "model.engine", profiles=PROFILES, flavour=flavour, **kw).to_dict()
    info.update(path="model.engine", onnx="model.onnx")
    manifest = make_manifest(onnx={"path": "model.onnx", "sha256": sha256_file(onnx_path)}, engines=[info])
    manifest.write(tmp_path)
    return manifest


@pytest.fixture
def on_cpu(monkeypatch):
    def use(module):
        monkeypatch.setattr(trt_runtime, "_device", lambda index, path: CpuDevice(module))
        monkeypatch.setattr(refit_module, "_device", lambda index, what: CpuDevice(module))
    return use


def test_hardware_compatible_plan_runs_on_any_ampere_plus_gpu(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "10")
    manifest = _export(tmp_path, monkeypatch, hardware_compatibility="ampere_plus")
    (tmp_path / "plain").mkdir()
    plain = _export(tmp_path / "plain", monkeypatch)  # no hardware compatibility: this GPU model only
    entry = manifest.engines[0]
    assert entry.options["hardware_compatibility"] == "ampere_plus"
    installed = {"tensorrt": mods["10"].__version__}
    assert engine_unusable_reason(entry, tmp_path, gpu_cc=(9, 0), installed=installed) is None
    assert "built hardware-compatible for Ampere and later (SM80+), this GPU is SM75" in \
        engine_unusable_reason(entry, tmp_path, gpu_cc=(7, 5), installed=installed)
    on_cpu(mods["10"])
    mods["10"].gpu_cc = (9, 0)  # built on SM86, run on an H200
    x = np.ones((1, 3, 16, 16), np.float32)
    with TrtRunner(tmp_path / "model.engine", manifest=manifest) as runner:
        np.testing.assert_array_equal(runner.infer({"input": x})["logits"], _expected(x))
    assert "this GPU is SM90" in engine_unusable_reason(plain.engines[0], tmp_path / "plain", gpu_cc=(9, 0),
                                                         installed=installed)
    with pytest.raises(RunnerError, match="cannot deserialise"):
        TrtRunner(tmp_path / "plain" / "model.engine", manifest=plain).activate()


def test_rtx_refuses_hardware_compatibility(tmp_path, monkeypatch):
    install(monkeypatch, "rtx")
    with pytest.raises(EngineBuildError, match="hardware compatibility 'ampere_plus' was requested on tensorrt-rtx"):
        _export(tmp_path, monkeypatch, "tensorrt-rtx", hardware_compatibility="ampere_plus")
    with pytest.raises(EngineBuildError, match="unknown hardware compatibility level 'turing'"):
        _export(tmp_path, monkeypatch, "tensorrt-rtx", hardware_compatibility="turing")


def test_rtx_weight_stripped_build_needs_the_driver_as_seen_here(tmp_path, monkeypatch):
    """tensorrt_rtx 1.7.1 on a CPU: a plain plan builds, STRIP_PLAN/REFIT builds fail with cudaError 35."""
    install(monkeypatch, "rtx")
    with pytest.raises(EngineBuildError, match="cudaError 35"):
        _export(tmp_path, monkeypatch, "tensorrt-rtx", strip_weights=True)


def test_weight_stripped_plan_is_refitted_at_activate_and_by_unetrt_refit(tmp_path, monkeypatch, on_cpu):
    mods = install(monkeypatch, "10")
    trt = mods["10"]
    manifest = _export(tmp_path, monkeypatch, strip_weights=True)
    entry = manifest.engines[0]
    assert entry.options["weight_stripped"] is True and entry.options["portability_flags"] == ["STRIP_PLAN",
                                                                                               "REFIT_IDENTICAL"]
    on_cpu(trt)
    x = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    with TrtRunner(tmp_path / "model.engine", manifest=manifest) as runner:
        np.testing.assert_array_equal(runner.infer({"input": x})["logits"], _expected(x))
    assert trt.calls.count("refit_cuda_engine") == 1
    assert any("weight-stripped plan refitted from model.onnx" in n for n in runner.notes)

    # engine choice: without its ONNX the plan cannot run; with another ONNX the runner refuses to refit
    onnx_bytes = (tmp_path / "model.onnx").read_bytes()
    (tmp_path / "model.onnx").unlink()
    why = engine_unusable_reason(entry, tmp_path, gpu_cc=(8, 6), installed={"tensorrt": trt.__version__})
    assert "weight-stripped plan is refitted from model.onnx, which is missing" in why
    identity_onnx(tmp_path / "model.onnx", weights=True, classes=4)
    with pytest.raises(RunnerError, match="not the ONNX the weight-stripped plan was built from"):
        TrtRunner(tmp_path / "model.engine", manifest=manifest).activate()
    (tmp_path / "model.onnx").write_bytes(onnx_bytes)

    result = CliRunner().invoke(main, ["refit", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "refitted model.engine: full plan written" in result.output
    refitted = Manifest.read(tmp_path).engines[0]
    assert refitted.options["weight_stripped"] is False and refitted.options["refitted_from"] == "model.onnx"
    assert refitted.sha256 == sha256_file(tmp_path / "model.engine") != entry.sha256
    assert not list(tmp_path.glob(".*.refit"))
    trt.calls.clear()
    with TrtRunner(tmp_path / "model.engine", manifest=Manifest.read(tmp_path)) as runner:
        np.testing.assert_array_equal(runner.infer({"input": x})["logits"], _expected(x))
    assert "refit_cuda_engine" not in trt.calls  # the full plan holds its weights

    again = CliRunner().invoke(main, ["refit", str(tmp_path)])
    assert again.exit_code == 1 and "no weight-stripped engine in" in again.output
    assert "Traceback" not in again.output and len(again.output.strip().splitlines()) == 1


def test_unetrt_build_rebuilds_with_the_recorded_options_on_the_tensorrt_here(tmp_path, monkeypatch, on_cpu):
    """A version-compatible, hardware-compatible, weight-stripped plan from TensorRT 10.16.0.1 rebuilt by the
    10.17 installed here: same profiles, precision and options; the manifest records the new build."""
    mods = install(monkeypatch, "10")
    before = _export(tmp_path, monkeypatch, version_compatible=True, hardware_compatibility="ampere_plus",
                     strip_weights=True, workspace_bytes=1 << 26, optimization_level=2).engines[0]
    mods["10"].__version__ = "10.17.0.1"
    result = CliRunner().invoke(main, ["build", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "built model.engine: fp32, tensorrt 10.17.0.1" in result.output
    assert "was tensorrt 10.16.0.1, now tensorrt 10.17.0.1" in result.output
    after = Manifest.read(tmp_path).engines[0]
    assert after.version == "10.17.0.1" and after.sha256 == sha256_file(tmp_path / "model.engine")
    assert after.profiles == before.profiles and after.precision == before.precision
    for key in ("version_compatible", "hardware_compatibility", "weight_stripped", "workspace_bytes",
                "optimization_level", "builder_flags", "portability_flags"):
        assert after.options[key] == before.options[key], key
    header = json.loads((tmp_path / "model.engine").read_bytes()[4:])
    assert header["version"] == "10.17.0.1" and header["hardware"] == "AMPERE_PLUS" and header["stripped"]
    assert "VERSION_COMPATIBLE" in header["flags"] and "STRIP_PLAN" in header["flags"]
    assert header["profiles"] == [{"input": [[1, 3, 16, 16], [1, 3, 32, 32], [2, 3, 64, 64]]}]


def test_unetrt_build_leaves_the_export_as_it_was_on_failure(tmp_path, monkeypatch):
    install(monkeypatch, "10")
    _export(tmp_path, monkeypatch)
    plan, manifest_text = (tmp_path / "model.engine").read_bytes(), (tmp_path / "manifest.json").read_text()
    identity_onnx(tmp_path / "model.onnx", classes=5)  # not the ONNX the manifest records
    result = CliRunner().invoke(main, ["build", str(tmp_path)])
    assert result.exit_code == 1 and "model.onnx does not match the manifest (sha256 differs)" in result.output
    assert "Traceback" not in result.output
    assert (tmp_path / "model.engine").read_bytes() == plan
    assert (tmp_path / "manifest.json").read_text() == manifest_text
    assert not list(tmp_path.glob(".*.building"))
    result = CliRunner().invoke(main, ["build", str(tmp_path), "--precision", "fp16"])
    assert result.exit_code == 1 and "no engine to rebuild" in result.output and "model.engine (fp32)" in result.output


def test_export_cli_records_portability_options():
    from unetrt.cli.options import engine_group

    captured = {}

    @engine_group
    def cmd(engine_options):
        captured["opts"] = engine_options

    import click

    command = click.command()(cmd)
    result = CliRunner().invoke(command, ["--hardware-compat", "ampere-plus", "--strip-weights",
                                          "--version-compatible"])
    assert result.exit_code == 0, result.output
    opts = captured["opts"]
    assert opts.portability() == {"hardware_compatibility": "ampere_plus", "strip_weights": True,
                                  "refittable": False}
    assert opts.version_compatible is True
    bad = CliRunner().invoke(command, ["--hardware-compat", "turing"])
    assert bad.exit_code == 2 and "'turing' is not one of 'ampere-plus', 'same-compute-capability'" in bad.output


@pytest.mark.slow
@pytest.mark.trt
def test_unetrt_build_rebuilds_a_real_rtx_plan(export_dir, tmp_path):
    """The real TensorRT-RTX builds on this CPU: build a plan, record it, rebuild it with ``unetrt build``."""
    pytest.importorskip("tensorrt_rtx")
    folder = tmp_path / "export"
    shutil.copytree(export_dir, folder)
    info = build_engine(folder / "model.onnx", folder / "model.engine", flavour="tensorrt-rtx",
                        compute_capabilities=["SM86"], workspace_bytes=1 << 28,
                        profiles=[{"input": ShapeProfile((1, 3, 16, 16), (1, 3, 32, 32), (1, 3, 64, 64))}]).to_dict()
    manifest = Manifest.read(folder)
    manifest.engines = [EngineEntry(**{**info, "path": "model.engine", "onnx": "model.onnx",
                                       "options": json.loads(json.dumps(info["options"], default=str))})]
    manifest.write(folder)
    first = (folder / "model.engine").read_bytes()
    result = CliRunner().invoke(main, ["build", str(folder)])
    assert result.exit_code == 0, result.output
    after = Manifest.read(folder).engines[0]
    assert after.compute_capabilities == ["SM86"] and after.options["workspace_bytes"] == 1 << 28
    assert after.profiles == manifest.engines[0].profiles and after.flavour == "tensorrt-rtx"
    assert after.sha256 == sha256_file(folder / "model.engine") and after.onnx_sha256 == sha256_file(folder / "model.onnx")
    data = (folder / "model.engine").read_bytes()
    assert data[:4] == first[:4] == b"vtrt" and abs(len(data) - len(first)) < len(first) // 10


def test_rtx_refit_builds_are_refused_without_a_gpu(tmp_path, monkeypatch):
    install(monkeypatch, "rtx")
    monkeypatch.setattr(trt_builder, "_build_gpu", lambda: None)
    with pytest.raises(EngineBuildError, match="weight-stripped or refittable TensorRT-RTX plan was requested "
                                               "without a GPU"):
        build_engine(identity_onnx(tmp_path / "model.onnx"), tmp_path / "model.engine", profiles=PROFILES,
                     flavour="tensorrt-rtx", compute_capabilities=["SM86"], refittable=True)
    assert not (tmp_path / "model.engine").exists()


@pytest.mark.slow
@pytest.mark.trt
def test_real_rtx_builds_plain_but_not_stripped_plans_without_a_gpu(tmp_path):
    """What the stand-in encodes, seen with the real tensorrt_rtx: without a GPU a plain plan of a convolution
    builds and a STRIP_PLAN + REFIT_IDENTICAL one returns None (cudaError 35 in its compile)."""
    rtx = pytest.importorskip("tensorrt_rtx")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from unetrt.artifacts.trt import probe_gpu_cc, process_logger

    if probe_gpu_cc() is not None:
        pytest.skip("checks the no-GPU behaviour")
    weight = numpy_helper.from_array(np.random.default_rng(0).random((4, 3, 3, 3), dtype=np.float32), "W")
    graph = helper.make_graph([helper.make_node("Conv", ["input", "W"], ["logits"], pads=[1, 1, 1, 1], name="conv")],
                              "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4, "H", "W"])],
                              [weight])
    onnx_path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(onnx_path))
    logger = process_logger(rtx).reset()
    sizes = {}
    for flags in ((), ("STRIP_PLAN", "REFIT_IDENTICAL")):
        builder = rtx.Builder(logger)
        network = builder.create_network(0)
        assert rtx.OnnxParser(network, logger).parse_from_file(str(onnx_path))
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        profile.set_shape("input", (1, 3, 8, 8), (1, 3, 16, 16), (1, 3, 32, 32))
        config.add_optimization_profile(profile)
        config.num_compute_capabilities = 1
        assert config.set_compute_capability(rtx.ComputeCapability.SM86, 0) is True
        for flag in flags:
            config.set_flag(getattr(rtx.BuilderFlag, flag))
        plan = builder.build_serialized_network(network, config)
        sizes[flags] = None if plan is None else plan.nbytes
    assert sizes[()] and sizes[("STRIP_PLAN", "REFIT_IDENTICAL")] is None
    assert any("cudaError 35" in e or "CUDA_SUCCESS" in e for e in logger.errors), logger.errors
