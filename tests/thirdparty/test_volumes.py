"""Volumes (NxCxDxHxW): N-D sliding window, volume prediction (.npy, NIfTI), 3-D bench sizes."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.fixtures.thirdparty import Plain3d
from unetrt.bench.inputs import check_sizes, parse_sizes
from unetrt.errors import InputError, UnetrtError
from unetrt.runtime import TorchRunner
from unetrt.runtime.tiling import sliding_window
from unetrt.runtime.volume import predict_volume



def test_sliding_window_over_d_h_w_matches_one_pass_for_a_pointwise_model():
    model = torch.nn.Conv3d(1, 2, 1).eval()
    x = np.random.default_rng(0).standard_normal((2, 1, 10, 13, 17)).astype(np.float32)
    calls = []
    with TorchRunner(model) as runner:
        whole = runner.infer({"input": x})["logits"]
        tiled = sliding_window(runner, x, (6, 8, 9), progress=lambda done, total: calls.append(total))
    assert tiled.shape == whole.shape == (2, 2, 10, 13, 17)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    assert calls[-1] == 2 * 2 * 2 * 3  # batch x tiles along D, H, W


def test_predict_volume_refuses_a_2d_model():
    with TorchRunner(torch.nn.Conv2d(1, 2, 1)) as runner:
        with pytest.raises(InputError, match="a volumetric model"):
            predict_volume(runner, np.zeros((4, 4, 4), np.float32))


@pytest.fixture(scope="module")
def export_3d(tmp_path_factory):
    from unetrt.exporter import ExportConfig, export

    out = tmp_path_factory.mktemp("plain3d")
    export(ExportConfig(factory="tests.fixtures.thirdparty:plain3d", model_kwargs={"width": 2},
                        output_dir=str(out), engine=False, force=True))
    return out


@pytest.mark.slow
def test_predict_volume_pads_to_the_alignment_and_tiles_large_volumes(export_3d):
    from unetrt.runtime import load

    vol = np.random.default_rng(1).standard_normal((9, 12, 15)).astype(np.float32)
    with load(str(export_3d), backend="ort") as runner:
        assert runner.input_constraints["input"].alignment == 2
        direct = predict_volume(runner, vol)
        tiled = predict_volume(runner, vol, tile=8, overlap=2)
        padded = np.pad(vol, [(0, 1), (0, 0), (0, 1)], mode="edge")[None, None]
        ref = runner.infer({"input": padded})["logits"][0, :, :9, :12, :15].argmax(0)
        with pytest.raises(InputError, match="channel"):
            predict_volume(runner, np.zeros((2, 8, 8, 8), np.float32))
    assert direct.mode == "aligned" and tiled.mode == "sliding-window"
    assert direct.mask.shape == tiled.mask.shape == (9, 12, 15) and direct.mask.dtype == np.uint8
    np.testing.assert_array_equal(direct.mask, ref)
    assert (tiled.mask == ref).mean() > 0.9  # blended tiles: border context differs


def test_unet_predict_on_npy_and_nifti_volumes(export_3d, tmp_path):
    from unetrt.cli.predict import predict_cmd

    vol = np.random.default_rng(2).standard_normal((7, 10, 12)).astype(np.float32)
    np.save(tmp_path / "v.npy", vol)
    result = CliRunner().invoke(predict_cmd, ["-m", str(export_3d), "-i", str(tmp_path / "v.npy"), "--json",
                                              "--backend", "ort"])
    assert result.exit_code == 0, result.output
    mask = np.load(tmp_path / "v_OUT.npy")
    assert mask.shape == (7, 10, 12) and mask.max() <= 2
    info = json.loads(result.stdout)
    assert info["volumes"][0]["mode"] == "aligned"
    nib = pytest.importorskip("nibabel")
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    nib.save(nib.Nifti1Image(vol.T.copy(), affine), str(tmp_path / "v.nii.gz"))
    result = CliRunner().invoke(predict_cmd, ["-m", str(export_3d), "-i", str(tmp_path / "v.nii.gz"),
                                              "--backend", "ort", "--tile", "4"])
    assert result.exit_code == 0, result.output
    out = nib.load(str(tmp_path / "v_OUT.nii.gz"))
    assert out.shape == (12, 10, 7) and np.allclose(out.affine, affine)


def test_bench_sizes_for_volumes():
    assert parse_sizes("64x96x80,32x32x48") == [(64, 96, 80), (32, 32, 48)]
    with pytest.raises(UnetrtError, match="mixes image"):
        parse_sizes("64x96x80,32")
    model = Plain3d()
    check_sizes([(8, 12, 16)], name="plain3d", min_size=2, alignment=2, model=model, in_channels=1)
    with pytest.raises(UnetrtError, match="volumetric: expected 3-D sizes"):
        check_sizes([(16, 16)], name="plain3d", min_size=2, alignment=2, model=model, in_channels=1)
    with pytest.raises(UnetrtError, match="D, H and W >= 2 and multiples of 2"):
        check_sizes([(8, 12, 15)], name="plain3d", min_size=2, alignment=2, model=model, in_channels=1)


def test_unet_predict_on_an_image_with_a_3d_model_says_expected_5d(export_3d, tmp_path):
    from PIL import Image

    from unetrt.cli.predict import predict_cmd

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "img.png")
    result = CliRunner().invoke(predict_cmd, ["-m", str(export_3d), "-i", str(tmp_path / "img.png"), "--backend", "ort"])
    assert result.exit_code == 1
    assert "rank 4 (an image) for a volumetric model: expected 5-D NxCxDxHxW" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize("shape, expected", [("8x12x16", [1, 1, 8, 12, 16]), ("2x8x8x8", [2, 1, 8, 8, 8])])
def test_static_3d_export_takes_dxhxw_and_nxdxhxw(tmp_path, shape, expected):
    """--static --shape DxHxW / NxDxHxW for a volumetric model (issue 19.7)."""
    from unetrt.cli import main as cli
    from unetrt.runtime import load

    out = tmp_path / "o"
    res = CliRunner().invoke(cli, ["export", "--model", "tests.fixtures.thirdparty:plain3d", "--model-kwargs",
                                   '{"width": 2}', "--static", "--shape", shape, "--no-engine", "-o", str(out)])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["static_shape"] == expected
    assert [s["input_shape"] for s in manifest["verification"]["sizes"]] == [expected]
    with load(str(out), backend="ort") as runner:
        y = runner.infer({"input": np.zeros(expected, np.float32)})["logits"]
    assert y.shape[0] == expected[0] and y.shape[2:] == tuple(expected[2:])


def test_static_shape_of_the_wrong_rank_is_one_line(tmp_path):
    from unetrt.cli import main as cli

    for args, needle in (
            (["--model", "tests.fixtures.thirdparty:plain3d", "--model-kwargs", '{"width": 2}', "--shape", "32x32"],
             "static shape 32x32 for a 3-D model | expected DxHxW or NxDxHxW"),
            (["--arch", "milesial", "--width", "4", "--shape", "1x3x64x64"],
             "static shape 1x3x64x64 for a 2-D model | expected HxW or NxHxW")):
        res = CliRunner().invoke(cli, ["export", *args, "--static", "--no-engine", "-o", str(tmp_path / "o")])
        assert res.exit_code == 1, res.output
        lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
        assert len(lines) == 1 and needle in lines[0], res.output
        assert not (tmp_path / "o").exists()
