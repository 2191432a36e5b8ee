"""Engine choice without a GPU: whether a recorded plan can run here (flavour installed, this GPU among its
targets, the exact TensorRT version or a version-compatible one), the ONNX fallback of ``load()`` and the bench
with the reason, and the flavour GPU tests build with."""

from __future__ import annotations

import pytest

from tests.fakes.trt_standins import make_module
from tests.helpers import make_manifest
from unetrt.artifacts.engine_entry import EngineEntry
from unetrt.runtime.engine_choice import engine_unusable_reason


def test_loader_falls_back_to_onnx_on_another_tensorrt_patch(plan_dir, monkeypatch):
    from unetrt.runtime import engine_choice, loader
    from unetrt.runtime.backends import Backend

    monkeypatch.setattr(engine_choice, "probe_gpu_cc", lambda device=0: (8, 6))
    monkeypatch.setattr(engine_choice, "installed_flavours", lambda: {"tensorrt": "10.16.0.2"})
    monkeypatch.setattr(Backend, "fits", lambda self, device, **kw: None)
    (plan_dir / "model.onnx").write_bytes(b"onnx")
    manifest = make_manifest(engines=[{**TRT_ENTRY, "sha256": "1" * 64, "precision": "fp32"}])
    backend, path, notes = loader.choose(manifest, plan_dir, "auto", "auto", cuda=True)
    assert (backend.kind, path.name) == ("onnx", "model.onnx")
    assert any("built by tensorrt 10.16.0.1, installed 10.16.0.2 (a plan loads on the exact version that built "
               "it)" in n for n in notes), notes


RTX_ENTRY = {"path": "model.engine", "flavour": "tensorrt-rtx", "version": "1.7.1.116",
             "compute_capabilities": ["SM75", "SM80", "SM86", "SM89", "SM120", "SM121"], "build_gpu": None}


TRT_ENTRY = {"path": "model.engine", "flavour": "tensorrt", "version": "10.16.0.1", "compute_capabilities": ["SM86"],
             "build_gpu": {"name": "RTX A6000", "compute_capability": "8.6"}, "options": {}}


BOTH = {"tensorrt": "10.16.0.1", "tensorrt-rtx": "1.7.1.116"}


def _typed(fields: dict) -> EngineEntry:
    """A typed engine entry from the fields a test cares about (the rule reads only typed entries)."""
    return EngineEntry(**{"sha256": "1" * 64, **fields})


@pytest.fixture
def plan_dir(tmp_path):
    (tmp_path / "model.engine").write_bytes(b"ftrt")
    return tmp_path


@pytest.mark.parametrize("entry, cc, installed, words", [
    (RTX_ENTRY, (8, 6), BOTH, None),
    (RTX_ENTRY, (9, 0), BOTH, ["built for SM75, SM80, SM86, SM89, SM120, SM121", "this GPU is SM90",
                               "no SM90/SM100 target"]),
    (RTX_ENTRY, (10, 0), BOTH, ["this GPU is SM100"]),
    (RTX_ENTRY, (8, 6), {"tensorrt": "10.16.0.1"}, ["tensorrt-rtx is not installed (it built this plan)"]),
    (RTX_ENTRY, (8, 6), {"tensorrt-rtx": "1.6.0.5"}, ["built by tensorrt-rtx 1.7.1.116, installed 1.6.0.5",
                                                      "the exact version that built it"]),
    (RTX_ENTRY, (8, 6), {"tensorrt-rtx": "1.7.1.117"}, ["installed 1.7.1.117", "exact version"]),
    (RTX_ENTRY, None, BOTH, ["no CUDA GPU visible"]),
    (TRT_ENTRY, (8, 6), BOTH, None),
    (TRT_ENTRY, (8, 9), BOTH, ["built for SM86, this GPU is SM89", "GPU model it was built on"]),
    (TRT_ENTRY, (8, 6), {"tensorrt": "10.17.0.2"}, ["installed 10.17.0.2"]),
    (TRT_ENTRY, (8, 6), {"tensorrt": "10.16.0.2"}, ["built by tensorrt 10.16.0.1, installed 10.16.0.2",
                                                    "the exact version that built it"]),
    (TRT_ENTRY, (8, 6), {"tensorrt": "10.16.0.1.0"}, None),
    ({**TRT_ENTRY, "options": {"version_compatible": True}}, (8, 6), {"tensorrt": "10.16.0.2"}, None),
    (TRT_ENTRY, (8, 6), {"tensorrt": "11.1.0.3"}, ["installed 11.1.0.3"]),
    ({**TRT_ENTRY, "options": {"version_compatible": True}}, (8, 6), {"tensorrt": "10.17.0.2"}, None),
    ({**TRT_ENTRY, "options": {"version_compatible": True}}, (8, 6), {"tensorrt": "11.1.0.3"},
     ["a later release of the same major"]),
    ({**TRT_ENTRY, "options": {"version_compatible": True}}, (8, 6), {"tensorrt": "10.15.0.1"}, ["installed 10.15"]),
    ({**TRT_ENTRY, "path": "gone.engine"}, (8, 6), BOTH, ["gone.engine listed in the manifest is missing"]),
])
def test_engine_unusable_reason(plan_dir, entry, cc, installed, words):
    why = engine_unusable_reason(_typed(entry), plan_dir, gpu_cc=cc, installed=installed)
    if words is None:
        assert why is None
    else:
        assert why is not None and "\n" not in why
        for word in words:
            assert word in why, why


def test_unknown_flavour_cannot_be_recorded():
    with pytest.raises(Exception, match="flavour"):
        _typed({**TRT_ENTRY, "flavour": "tensorrt-9"})


def test_engine_targets_from_older_records():
    assert _typed({"path": "x", "options": {"compute_capabilities": ["SM86", "SM89"]}}).targets() == [(8, 6), (8, 9)]
    assert _typed({"path": "x", "compute_capabilities": ["CURRENT"],
                   "build_gpu": {"compute_capability": "12.0"}}).targets() == [(12, 0)]
    assert _typed({"path": "x", "build_gpu": {"compute_capability": "9.0"}}).targets() == [(9, 0)]
    assert _typed({"path": "x"}).targets() is None  # no record: TensorRT itself checks at deserialisation


def test_loader_falls_back_to_onnx_with_the_reason(plan_dir, monkeypatch):
    from unetrt.runtime import engine_choice, loader
    from unetrt.runtime.backends import Backend

    monkeypatch.setattr(engine_choice, "probe_gpu_cc", lambda device=0: (9, 0))
    monkeypatch.setattr(engine_choice, "installed_flavours", lambda: BOTH)
    monkeypatch.setattr(Backend, "fits", lambda self, device, **kw: None)  # as if CUDA EP + TensorRT
    (plan_dir / "model.onnx").write_bytes(b"onnx")
    manifest = make_manifest(engines=[{**RTX_ENTRY, "sha256": "1" * 64, "precision": "fp32"}])
    backend, path, notes = loader.choose(manifest, plan_dir, "auto", "auto", cuda=True)
    assert (backend.kind, path.name) == ("onnx", "model.onnx")
    assert "trt: engine model.engine skipped: built for SM75, SM80, SM86, SM89, SM120, SM121, this GPU is SM90 " \
           "(TensorRT-RTX has no SM90/SM100 target: use standard TensorRT on this GPU); rebuild it here" in notes
    monkeypatch.setattr(engine_choice, "probe_gpu_cc", lambda device=0: (8, 9))
    assert loader.choose(manifest, plan_dir, "auto", "auto", cuda=True)[0].kind == "engine"


def test_bench_rebuilds_cached_engines_this_gpu_cannot_run(plan_dir, monkeypatch):
    """The bench's cache reuses an engine only where ``locate`` (what ``load()`` uses) finds it runnable."""
    from unetrt.artifacts.refs import ArtifactRef
    from unetrt.runtime import engine_choice
    from unetrt.runtime.choice import locate

    manifest = make_manifest(engines=[{**RTX_ENTRY, "sha256": "1" * 64}])
    monkeypatch.setattr(engine_choice, "installed_flavours", lambda: BOTH)
    monkeypatch.setattr(engine_choice, "probe_gpu_cc", lambda device=0: (9, 0))
    path, why = locate(manifest, plan_dir, ArtifactRef("engine"))
    assert path is None and "this GPU is SM90" in why
    assert locate(manifest, plan_dir, ArtifactRef("engine"), here=False) == (plan_dir / "model.engine", None)
    monkeypatch.setattr(engine_choice, "probe_gpu_cc", lambda device=0: (8, 6))
    assert locate(manifest, plan_dir, ArtifactRef("engine")) == (plan_dir / "model.engine", None)


@pytest.mark.parametrize("cc, installed, flavour, words", [
    ((9, 0), {"tensorrt-rtx": "1.7.1.116"}, None, ["tensorrt-rtx 1.7.1.116 has no SM90 target",
                                                    "standard TensorRT is not installed", "unetrt[gpu]"]),
    ((9, 0), BOTH, "tensorrt", []),
    ((8, 6), {"tensorrt-rtx": "1.7.1.116"}, "tensorrt-rtx", []),
    ((7, 5), {"tensorrt-rtx": "1.7.1.116"}, "tensorrt-rtx", []),
    (None, BOTH, None, ["no CUDA GPU visible"]),
    ((8, 6), {}, None, ["no TensorRT flavour installed"]),
])
def test_flavour_for_gpu(cc, installed, flavour, words):
    """GPU tests build with the flavour that can target the GPU, or skip saying why (not "auto" -> an RTX
    plan on SM90 -> RunnerError)."""
    from unetrt.runtime.engine_choice import flavour_for_gpu, rtx_targets

    sms = rtx_targets(make_module("tensorrt-rtx", "1.7.1.116"))
    got, why = flavour_for_gpu(cc, installed, sms)
    assert got == flavour
    for word in words:
        assert word in why, why


def test_rtx_targets_of_the_real_bindings():
    rtx = pytest.importorskip("tensorrt_rtx")
    from unetrt.runtime.engine_choice import rtx_targets

    assert rtx_targets(rtx) == ["SM75", "SM80", "SM86", "SM89", "SM120", "SM121"]


def test_gpu_tests_skip_when_the_flavour_cannot_target_the_gpu(monkeypatch):
    from tests.runtime.conftest import gpu_flavour_or_skip
    from unetrt.runtime import engine_choice

    monkeypatch.setattr(engine_choice, "probe_gpu_cc", lambda device=0: (9, 0))
    monkeypatch.setattr(engine_choice, "installed_flavours", lambda: {"tensorrt-rtx": "1.7.1.116"})
    monkeypatch.setattr(engine_choice, "rtx_targets", lambda module=None: ["SM75", "SM80", "SM86", "SM89"])
    with pytest.raises(pytest.skip.Exception, match="tensorrt-rtx 1.7.1.116 has no SM90 target"):
        gpu_flavour_or_skip()
    monkeypatch.setattr(engine_choice, "installed_flavours", lambda: BOTH)
    assert gpu_flavour_or_skip() == "tensorrt"
