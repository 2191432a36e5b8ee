"""One typed artifact reference: file names, manifest entries, backends' artifacts and device fit."""

from __future__ import annotations

import pytest

from tests.helpers import make_manifest
from unetrt.artifacts import names
from unetrt.artifacts.refs import ONNX_FP32, ArtifactRef
from unetrt.errors import RegistrationError
from unetrt.runtime import backends as registry
from unetrt.runtime.backends import Backend
from unetrt.runtime.choice import locate

SHA = "1" * 64


@pytest.mark.parametrize("ref, file, key, label", [
    (ArtifactRef("onnx"), "model.onnx", "onnx", "fp32 ONNX"),
    (ArtifactRef("onnx", "fp16"), "model_fp16.onnx", "onnx_fp16", "fp16 ONNX"),
    (ArtifactRef("onnx", "int8"), "model_int8.onnx", "onnx_int8", "int8 ONNX"),
    (ArtifactRef("onnx", "int8", "cpu"), "model_int8_cpu.onnx", "onnx_int8_cpu", "int8-cpu ONNX"),
    (ArtifactRef("engine"), "model.engine", "engine", "fp32 engine"),
    (ArtifactRef("engine", "fp16"), "model_fp16.engine", "engine_fp16", "fp16 engine"),
    (ArtifactRef("engine", "int8"), "model_int8.engine", "engine_int8", "int8 engine"),
    (ArtifactRef("module", "fp16"), None, "module_fp16", "fp16 eager model"),
])
def test_ref_names_its_file_key_and_label(ref, file, key, label):
    assert (ref.file_name, ref.key, ref.label, str(ref)) == (file, key, label, key)


def test_refs_are_values_and_unknown_ones_are_refused():
    assert ArtifactRef("onnx", "fp32", "") == ONNX_FP32 and len({ArtifactRef("onnx"), ONNX_FP32}) == 1
    with pytest.raises(RegistrationError, match="artifact kind 'tflite'"):
        ArtifactRef("tflite")
    with pytest.raises(RegistrationError, match="no engine file is named for precision 'int8' form 'cpu'"):
        ArtifactRef("engine", "int8", "cpu")
    with pytest.raises(RegistrationError, match="no onnx file is named for precision 'bf16'.*unetrt.artifacts.names"):
        Backend("bf16-test", "ort", "x:Y", "onnx", "bf16", ("cpu",), "refused at registration")


def test_manifest_entry_per_ref():
    manifest = make_manifest(
        fp16={"path": names.ONNX_FP16, "sha256": SHA},
        int8={"path": names.ONNX_INT8, "sha256": SHA, "cpu": {"path": names.ONNX_INT8_CPU, "sha256": "2" * 64}},
        engines=[{"path": "a.engine", "sha256": SHA, "precision": "fp16"},
                 {"path": "b.engine", "sha256": SHA, "precision": "fp16"}])
    assert manifest.entry(ONNX_FP32) is manifest.onnx
    assert manifest.entry(ArtifactRef("onnx", "fp16")) is manifest.fp16
    assert manifest.entry(ArtifactRef("onnx", "int8", "cpu")).sha256 == "2" * 64
    assert [e.path for e in manifest.entries(ArtifactRef("engine", "fp16"))] == ["a.engine", "b.engine"]
    assert manifest.entry(ArtifactRef("engine")) is None and manifest.entry(ArtifactRef("module")) is None
    assert [e.ref.key for e in manifest.artifact_entries()] == \
        ["onnx", "onnx_fp16", "onnx_int8", "onnx_int8_cpu", "engine_fp16", "engine_fp16"]
    assert manifest.sha256_of(names.ONNX_INT8_CPU) == "2" * 64


def test_every_builtin_backend_runs_a_named_artifact():
    refs = {b.name: b.artifact for b in registry.backends()}
    assert refs["ort-int8-cpu"] == ArtifactRef("onnx", "int8", "cpu") and refs["ort-int8"].form == ""
    assert refs["trt-fp16"].file_name == "model_fp16.engine" and refs["eager"] == ArtifactRef("module")
    assert all(r.kind == "module" or r.file_name for r in refs.values())


@pytest.mark.parametrize("name, device, cuda, spelled, reason", [
    ("ort", "cpu", False, "device={!r}", None),
    ("ort", "cuda", True, "device={!r}", "device='cuda' excludes CPU-only backends"),
    ("ort-cuda", "cpu", True, "--device {}", "--device cpu excludes GPU backends"),
    ("trt", "auto", False, "device={!r}", "needs a CUDA GPU (none visible)"),
    ("eager", "auto", False, "device={!r}", None),
])
def test_backend_fits_the_device_policy(name, device, cuda, spelled, reason):
    backend = registry.get(name)
    if backend.available is not None and reason is None:
        assert backend.available() is None  # onnxruntime and torch are installed here
    assert backend.fits(device, cuda=cuda, spelled=spelled) == reason


@pytest.mark.parametrize("name, device, cuda, where", [
    ("eager", "auto", True, "cuda"), ("eager", "cpu", True, "cpu"), ("eager", "auto", False, "cpu"),
    ("eager-fp16", "auto", True, "cuda"), ("ort", "auto", True, "cpu"), ("ort-cuda", "auto", True, "cuda"),
])
def test_backend_device_for(name, device, cuda, where):
    assert registry.get(name).device_for(device, cuda) == where


def test_locate_reports_a_missing_or_listed_but_absent_file(tmp_path):
    manifest = make_manifest(engines=[{"path": "model.engine", "sha256": SHA}])
    (tmp_path / "model.onnx").write_bytes(b"x")
    assert locate(manifest, tmp_path, ONNX_FP32) == (tmp_path / "model.onnx", None)
    assert locate(manifest, tmp_path, ArtifactRef("onnx", "fp16")) == (None, "the export has no fp16 ONNX")
    assert locate(manifest, tmp_path, ArtifactRef("engine"), here=False) == \
        (None, "engine model.engine listed in the manifest is missing")
    assert locate(manifest, tmp_path, ArtifactRef("module"))[1].startswith("no checkpoint file to run eagerly")


def test_bench_export_sets_derive_from_the_refs():
    """The bench's exports, derived from the file table, are the hand-kept sets they replace."""
    from unetrt.bench.artifacts import EXPORTS, export_set

    int8_off = {"int8": True, "int8_min_argmax": 0.0, "int8_min_dice": 0.0}
    expected = {
        "engine_fp16": ({"fp16": True, "engine": True}, {"onnx", "onnx_fp16", "engine_fp16"}),
        "engine_int8": ({**int8_off, "engine": True}, {"onnx", "onnx_int8", "engine_int8"}),
        "engine": ({"engine": True}, {"onnx", "engine"}),
        "onnx_int8": ({**int8_off, "int8_cpu": True}, {"onnx", "onnx_int8", "onnx_int8_cpu"}),
        "onnx_int8_cpu": ({**int8_off, "int8_cpu": True}, {"onnx", "onnx_int8", "onnx_int8_cpu"}),
        "onnx_fp16": ({"fp16": True}, {"onnx", "onnx_fp16"}),
        "onnx_fp32_labels": ({"fp32_labels": True}, {"onnx", "onnx_fp32_labels"}),
        "onnx": ({}, {"onnx"}),
    }
    assert {r.key: (dict(e.switches), {p.key for p in e.provides}) for r, e in EXPORTS.items()} == expected
    assert list(r.key for r in EXPORTS) == list(expected)  # engines first, larger exports first


def test_a_new_artifact_is_its_file_name_its_section_and_its_runner(monkeypatch):
    """A new ONNX form named in the file table is a valid reference, the bench exports it with its switch,
    and a backend registered for it runs it: nothing else lists artifacts."""
    from unetrt.bench.artifacts import export_set

    monkeypatch.setitem(names.FILES, ("onnx", "fp16", "io"), "model_fp16_io.onnx")
    ref = ArtifactRef("onnx", "fp16", "io")
    assert (ref.file_name, ref.key) == ("model_fp16_io.onnx", "onnx_fp16_io")
    made = export_set(ref)
    assert dict(made.switches) == {"fp16": True, "fp16_io": True} and ref in made.provides
    backend = Backend("ort-fp16-io-test", "ort", "x:Y", "onnx", "fp16", ("cpu",), "new artifact", form="io")
    assert backend.artifact == ref
