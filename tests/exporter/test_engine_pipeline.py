"""FP16 ONNX + TensorRT engines through the export chain, for every zoo variant (CPU-only AOT build)."""

import json

import numpy as np
import onnx
import pytest

from tests.helpers import trt_available
from unetrt.errors import EngineBuildError, MissingDependencyError, ProfileError
from unetrt.exporter import ExportConfig, export
from unetrt.exporter.steps import EngineOptions, default_profile
from unetrt.exporter.trt_builder import ShapeProfile, build_engine
from unetrt.models import get_spec, list_models

trt = pytest.mark.skipif(not trt_available(), reason="neither tensorrt nor tensorrt_rtx is installed")
WIDTH = {"width": 16}  # weights must dominate the plan's fixed overhead for the size comparison


def _float16_initializers(path) -> int:
    model = onnx.load(str(path))
    return sum(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def _dims(vi):
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


@pytest.mark.slow
@pytest.mark.parametrize("arch", list_models())
def test_every_variant_exports_exactly(arch, tmp_path):
    """FP32 ONNX verified over the sweep, FP16 ONNX verified, and (with TensorRT) an FP16 engine."""
    spec = get_spec(arch)
    out = tmp_path / arch
    has_trt = trt_available()
    m = export(ExportConfig(arch=arch, model_kwargs=WIDTH, output_dir=str(out), fp16=True, engine=has_trt)).manifest.to_dict()
    expected = ["manifest.json", "model.onnx", "model_fp16.onnx"] + (["model_fp16.engine"] if has_trt else [])
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # self-contained, no .data sidecar
    # FP32: exact at every admissible size
    assert m["input"]["alignment"] == spec.alignment and m["input"]["min_size"] >= spec.min_size
    rows = m["verification"]["sizes"]
    assert rows and all(r["passed"] for r in rows) and max(r["max_abs"] for r in rows) <= 1e-4
    assert any(r["input_shape"][0] == 2 for r in rows)  # batch > 1
    if spec.alignment == 1:  # odd, non-square and every residue mod 16 of H and of W
        assert {r["input_shape"][2] % 16 for r in rows} == set(range(16))
        assert {r["input_shape"][3] % 16 for r in rows} == set(range(16))
    proto = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(proto)
    assert _dims(proto.graph.input[0])[0::2] == ["batch", "height"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["unetrt.model"])["arch"] == arch
    assert json.loads(meta["unetrt.input"])["alignment"] == spec.alignment
    assert json.loads(meta["unetrt.verification"])["passed"] is True
    assert m["onnx"]["sha256"] == m["artifacts"][0]["sha256"]
    # FP16 ONNX: really FP16, verified over the same sweep
    fp16 = m["fp16"]
    assert _float16_initializers(out / "model_fp16.onnx") > 0
    assert [r["input_shape"] for r in fp16["verification"]["sizes"]] == [r["input_shape"] for r in rows]
    assert all(r["passed"] and r["argmax_agreement"] >= 0.995 for r in fp16["verification"]["sizes"])
    if not has_trt:
        return
    (eng,) = m["engines"]
    assert eng["precision"] == "fp16" and eng["onnx"] == "model_fp16.onnx"
    assert eng["onnx_sha256"] == fp16["sha256"]  # built from the FP16 ONNX, not the FP32 one
    assert {a["path"]: a["sha256"] for a in m["artifacts"]}["model_fp16.engine"] == eng["sha256"]
    assert [io["name"] for io in eng["io"]] == ["input", "logits"]
    assert eng["io"][0]["shape"][0] == -1 and eng["io"][0]["shape"][2] == -1  # dynamic profile
    prof = eng["profiles"][0]["input"]
    assert prof["min"][2] >= m["input"]["min_size"] and prof["min"][2] % m["input"]["alignment"] == 0
    fp32 = build_engine(out / "model.onnx", tmp_path / "fp32.engine", precision="fp32",
                        profiles=[{"input": ShapeProfile(*(tuple(prof[k]) for k in ("min", "opt", "max")))}])
    ratio = eng["size_bytes"] / fp32.size_bytes
    assert ratio < 0.75, f"FP16 engine is {ratio:.2f} of the FP32 one"


@trt
@pytest.mark.trt
def test_profiles_outside_the_variant_are_refused(tmp_path):
    bad = [("1x3x8x8", "1x3x64x64", "1x3x128x128", "outside what the model supports"),
           ("1x1x32x32", "1x1x64x64", "1x1x128x128", "3 channels"),
           ("1x3x64x64", "1x3x32x32", "1x3x128x128", "opt")]
    for lo, mid, hi, needle in bad:
        with pytest.raises(ProfileError, match=needle):
            export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, output_dir=str(tmp_path / "o"),
                                engine=True, verify=False,
                                engine_options=EngineOptions(profiles=[{"input": ShapeProfile.parse(lo, mid, hi)}])))
    with pytest.raises(ProfileError, match="multiples of 16"):
        export(ExportConfig(arch="plain", model_kwargs={"width": 4}, output_dir=str(tmp_path / "o"), engine=True,
                            engine_options=EngineOptions(profiles=[{"input": ShapeProfile.parse(
                                "1x3x16x16", "1x3x40x40", "1x3x64x64")}])))
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@trt
@pytest.mark.trt
def test_rtx_refuses_timing_cache_before_building(tmp_path):
    from unetrt.exporter.steps import engine_flavour

    if engine_flavour(True, "auto")[0] != "tensorrt-rtx":
        pytest.skip("TensorRT-RTX specific")
    with pytest.raises(EngineBuildError, match="timing cache"):
        export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, output_dir=str(tmp_path / "o"), engine=True,
                            verify=False, engine_options=EngineOptions(timing_cache=str(tmp_path / "t.cache"))))
    assert not (tmp_path / "o").exists()


def test_unwritable_timing_cache_fails_before_build(tmp_path):
    from unetrt.exporter.steps import check_timing_cache

    (tmp_path / "f").write_text("x")
    with pytest.raises(EngineBuildError, match="not writable"):
        check_timing_cache(str(tmp_path / "f" / "cache.bin"))
    with pytest.raises(EngineBuildError, match="not writable"):
        check_timing_cache(str(tmp_path))
    check_timing_cache(str(tmp_path / "new.cache"))  # a new file in a writable folder is fine


@pytest.mark.slow
def test_missing_flavour_names_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in ("tensorrt", "tensorrt_rtx"):
            raise ImportError(name)
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match=r"unetrt\[gpu\]"):
        export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, output_dir=str(tmp_path / "o"),
                            engine=True, engine_options=EngineOptions(flavour="tensorrt")))
    m = export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, output_dir=str(tmp_path / "auto"),
                            verify=False)).manifest.to_dict()  # auto: no engine, and it says how to get one
    assert m["engines"] == [] and any("unetrt[rtx]" in n for n in m["export"]["notes"])


def test_default_profile_follows_the_variant():
    p = default_profile(3, 16, 16, None)
    assert (p.min, p.opt, p.max) == ((1, 3, 16, 16), (1, 3, 256, 256), (4, 3, 1024, 1024))
    p = default_profile(1, 1, 188, None)
    assert p.min == (1, 1, 188, 188) and p.opt == (1, 1, 256, 256)
    p = default_profile(3, 1, 16, (2, 3, 64, 96))
    assert p.min == p.opt == p.max == (2, 3, 64, 96)


@pytest.mark.slow
def test_fp16_io_and_calibration_images(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        np.save(calib / f"img{i}.npy", (rng.random((40, 52, 3)) * 255).astype(np.uint8))
    m = export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, output_dir=str(tmp_path / "o"),
                            fp16=True, fp16_io=True, calib_images=str(calib), engine=False)).manifest.to_dict()
    assert m["fp16"]["keep_io_types"] is False
    assert m["fp16"]["calibration"] == {"source": "user images", "inputs": [[1, 3, 40, 52], [1, 3, 40, 52]]}
    model = onnx.load(str(tmp_path / "o" / "model_fp16.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["input"]["dtype"] == "float16"
