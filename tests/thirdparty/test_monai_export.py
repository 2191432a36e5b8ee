"""MONAI's UNets through the whole export chain (randomised BatchNorm statistics, small channels):
the probe finds the size rule, ONNX matches eager at admitted non-square sizes, 3-D models get
dynamic N/D/H/W, FP16 ONNX and a TensorRT-RTX engine with 5-D profiles, and run through Runner.infer."""

import importlib.util

import numpy as np
import pytest
import torch

from tests.fixtures.thirdparty import monai_net
from unetrt.errors import ExportError, InputError, ProfileError
from unetrt.exporter import ExportConfig, export
from unetrt.exporter.steps import EngineOptions
from unetrt.runtime import load

FACTORY = "tests.fixtures.thirdparty:monai_net"
UNET_2D = {"net": "UNet", "spatial_dims": 2, "in_channels": 1, "out_channels": 3, "channels": [4, 8, 16, 16],
           "strides": [2, 2, 2], "norm": "batch", "seed": 1}
UNET_3D = {"net": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 8],
           "strides": [2, 2], "norm": "batch", "seed": 2}
HAS_RTX = importlib.util.find_spec("tensorrt_rtx") is not None


def _dims(vi):
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def _eager(kwargs, x):
    model = monai_net(**kwargs)
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.slow
def test_monai_unet_2d_auto_alignment_is_probed_and_exact(tmp_path):
    result = export(ExportConfig(factory=FACTORY, model_kwargs=UNET_2D, output_dir=str(tmp_path), engine=False))
    section = result.manifest.input
    assert (section.alignment, section.min_size, section.alignment_source) == (8, 8, "probed")
    rows = result.manifest.verification.sizes
    assert rows and all(r.passed and r.max_abs < 1e-4 for r in rows)
    assert any(r.input_shape[2] != r.input_shape[3] for r in rows)
    with load(str(tmp_path), backend="ort") as runner:
        for shape in [(1, 1, 24, 40), (3, 1, 56, 16)]:  # admitted sizes the sweep did not use
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            got = runner.infer({"input": x})["logits"]
            np.testing.assert_allclose(got, _eager(UNET_2D, x), atol=1e-5)
        with pytest.raises(InputError, match="H/W not a multiple of 8"):
            runner.infer({"input": np.zeros((1, 1, 20, 24), np.float32)})


def test_forced_alignment_the_model_cannot_take_is_one_line(tmp_path):
    with pytest.raises(ExportError) as err:
        export(ExportConfig(factory=FACTORY, model_kwargs=UNET_2D, output_dir=str(tmp_path), align=4, engine=False))
    msg = str(err.value)
    assert msg.startswith("eager probe failed at input 2x1x64x68: RuntimeError: Sizes of tensors must match")
    assert "--align auto" in msg and "\n" not in msg


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RTX, reason="needs tensorrt_rtx (pip install 'unetrt[rtx]')")
def test_monai_unet_3d_exports_fp16_and_an_engine_with_5d_profiles(tmp_path):
    result = export(ExportConfig(factory=FACTORY, model_kwargs=UNET_3D, output_dir=str(tmp_path), fp16=True,
                                 engine=True))
    m = result.manifest.to_dict()
    assert m["input"]["layout"] == "NCDHW" and m["input"]["alignment"] == 4 and m["input"]["min_size"] == 4
    assert m["input"]["alignment_source"] == "probed"
    assert m["input"]["dynamic"] == {"batch": True, "depth": True, "height": True, "width": True}
    shapes = [r["input_shape"] for r in m["verification"]["sizes"]]
    assert all(len(s) == 5 for s in shapes) and any(len(set(s[2:])) == 3 for s in shapes)
    assert all(r["passed"] for r in m["fp16"]["verification"]["sizes"])
    engine = m["engines"][0]
    assert engine["flavour"] == "tensorrt-rtx" and engine["precision"] == "fp16"
    prof = engine["profiles"][0]["input"]
    assert prof["min"] == [1, 1, 4, 4, 4] and len(prof["max"]) == 5
    assert [io["shape"] for io in engine["io"]] == [[-1, 1, -1, -1, -1], [-1, 2, -1, -1, -1]]
    import onnx

    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert _dims(proto.graph.input[0]) == ["batch", 1, "depth", "height", "width"]
    with load(str(tmp_path), backend="ort") as runner:
        x = np.random.default_rng(1).standard_normal((2, 1, 12, 8, 20)).astype(np.float32)
        np.testing.assert_allclose(runner.infer({"input": x})["logits"], _eager(UNET_3D, x), atol=1e-5)
        with pytest.raises(InputError, match="expected 5-D NxCxDxHxW"):
            runner.infer({"input": np.zeros((1, 1, 8, 8), np.float32)})


@pytest.mark.slow
def test_3d_model_given_a_2d_profile_is_refused_before_building(tmp_path):
    from unetrt.artifacts.profiles import ShapeProfile

    prof = [{"input": ShapeProfile((1, 1, 16, 16), (1, 1, 32, 32), (1, 1, 64, 64))}]
    with pytest.raises(ProfileError) as err:
        export(ExportConfig(factory="tests.fixtures.thirdparty:plain3d", output_dir=str(tmp_path), engine=True,
                            engine_options=EngineOptions(flavour="tensorrt-rtx", profiles=prof)))
    assert "the model is volumetric: expected 5-D" in str(err.value) and "Nx1xDxHxW" in str(err.value)
