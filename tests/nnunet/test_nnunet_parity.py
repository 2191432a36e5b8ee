"""unetrt's nnU-Net predictor against the real ``nnUNetPredictor`` on the same synthetic results folders
(see conftest.py): voxel agreement >= 0.999 and softmax/sigmoid max abs <= 1e-3 with FP32 ONNX Runtime,
FP16 argmax agreement >= 0.995, and ``unet-predict --nnunet-export`` on a NIfTI case."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from .conftest import reference_predict

pytestmark = pytest.mark.slow  # exports of several folds, nnUNetPredictor runs

CASES = ["plain3d", "resenc2d"]


def _ours(built, precision=None, use_mirroring=True, accumulate="float16", batch_size=8):
    from unetrt.nnunet.predict import NnunetPredictor

    predictor = NnunetPredictor.from_export(built.export, "ort", "cpu", precision=precision,
                                            use_mirroring=use_mirroring, accumulate=accumulate,
                                            batch_size=batch_size)
    with predictor:
        return predictor.predict(built.image, built.spacing, probabilities=True)


@pytest.mark.parametrize("name", CASES)
def test_fp32_matches_nnunet_predictor(built, name):
    b = built[name]
    seg, probs = _ours(b)
    assert seg.shape == b.ref_seg.shape == b.image.shape[1:]
    assert probs.shape == b.ref_probs.shape
    assert len(np.unique(b.ref_seg)) >= 2, "the case must exercise more than one label"
    agreement = float((seg == b.ref_seg).mean())
    assert agreement >= 0.999, agreement
    assert float(np.abs(probs - b.ref_probs).max()) <= 1e-3


def test_mirroring_off_matches_nnunet_predictor(built):
    b = built["plain3d"]
    ref_seg, ref_probs = reference_predict(b.results, b.image, b.spacing, use_mirroring=False)
    seg, probs = _ours(b, use_mirroring=False, batch_size=3)
    assert float((seg == ref_seg).mean()) >= 0.999
    assert float(np.abs(probs - ref_probs).max()) <= 1e-3
    # and mirroring really changes the answer (so the TTA path is exercised by the other test)
    assert float(np.abs(ref_probs - b.ref_probs).max()) > 1e-3


def test_region_based_labels(built):
    b = built["resenc2d"]
    seg, probs = _ours(b)
    assert set(np.unique(seg)) <= {0, 1, 2}
    # regions_class_order [1, 2]: label 2 where "core" > 0.5, else 1 where "whole" > 0.5
    expected = np.zeros_like(seg)
    expected[probs[0] > 0.5] = 1
    expected[probs[1] > 0.5] = 2
    assert np.array_equal(seg, expected)


def test_fp16_argmax_agreement(built):
    b = built["plain3d"]
    assert (b.export / "fold_0" / "model_fp16.onnx").is_file()
    seg, _ = _ours(b, precision="fp16")
    agreement = float((seg == b.ref_seg).mean())
    assert agreement >= 0.995, agreement


def test_float32_accumulation_close(built):
    b = built["plain3d"]
    seg, probs = _ours(b, accumulate="float32")
    assert float((seg == b.ref_seg).mean()) >= 0.999
    # nnU-Net sums in float16 (about 3 significant digits): float32 sums differ by a few 1e-3 in places, more
    # only where tile corners alone cover a voxel (Gaussian ~ float16's tiniest values)
    diff = np.abs(probs - b.ref_probs).max(0)
    far = float((diff > 1e-2).mean())
    assert 0 < float(diff.max()) and far <= 0.01, (float(diff.max()), far)


def test_manifest_records_nnunet_settings(built):
    b = built["plain3d"]
    for fold in (0, 1):
        data = json.loads((b.export / f"fold_{fold}" / "manifest.json").read_text())
        nn = data["nnunet"]
        assert nn["fold"] == fold and nn["configuration"] == "3d_fullres" and nn["trainer"] == "nnUNetTrainer"
        assert nn["patch_size"] == [16, 32, 32] and nn["spacing"] == [2.0, 0.8, 0.8]
        assert nn["normalization_schemes"] == ["CTNormalization"] and nn["mirror_axes"] == [0, 1, 2]
        assert nn["intensity_properties"]["0"]["percentile_00_5"] == -500.0
        assert nn["tile_step_size"] == 0.5 and nn["use_gaussian"] is True
        assert nn["resampling_data"]["kwargs"]["order"] == 3
        assert data["model"]["factory"] == "unetrt.nnunet.network:build_network"
    for name in ("plans.json", "dataset.json", "dataset_fingerprint.json"):
        assert (b.export / name).is_file()


def test_fold_selection(built):
    from unetrt.errors import ManifestError
    from unetrt.nnunet.predict import NnunetPredictor

    b = built["plain3d"]
    one = NnunetPredictor.from_export(b.export, "ort", "cpu", folds=[1])
    assert len(one.runners) == 1 and one.section.fold == 1
    with pytest.raises(ManifestError, match="folds \\['3'\\] requested; the export has 0, 1"):
        NnunetPredictor.from_export(b.export, "ort", "cpu", folds=[3])


def _write_nifti(path, volume, spacing):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(volume)
    img.SetSpacing([float(s) for s in spacing[::-1]])  # SimpleITK: x, y, z
    sitk.WriteImage(img, str(path))


def test_cli_predict_nifti(built, tmp_path):
    import SimpleITK as sitk

    from unetrt.cli.predict import predict_cmd

    b = built["plain3d"]
    case = tmp_path / "case_001_0000.nii.gz"
    _write_nifti(case, b.image[0], b.spacing)
    res = CliRunner().invoke(predict_cmd, ["--nnunet-export", str(b.export), "-i", str(case),
                                           "-o", f"{tmp_path / 'out'}/", "--json"])
    assert res.exit_code == 0, res.output
    written = tmp_path / "out" / "case_001.nii.gz"
    img = sitk.ReadImage(str(written))
    seg = sitk.GetArrayFromImage(img)
    assert np.allclose(img.GetSpacing(), b.spacing[::-1])
    assert float((seg == b.ref_seg).mean()) >= 0.999
    # a second run refuses to overwrite, naming the file
    again = CliRunner().invoke(predict_cmd, ["--nnunet-export", str(b.export), "-i", str(case),
                                             "-o", f"{tmp_path / 'out'}/"])
    assert again.exit_code != 0 and "case_001.nii.gz exists" in again.output
    assert "Traceback" not in again.output


def test_cli_predict_wrong_channel_count(built, tmp_path):
    from unetrt.cli.predict import predict_cmd

    b = built["plain3d"]
    files = []
    for c in range(2):
        files.append(tmp_path / f"case_{c:04d}.nii.gz")
        _write_nifti(files[-1], b.image[0], b.spacing)
    res = CliRunner().invoke(predict_cmd, ["--nnunet-export", str(b.export), "-i", str(files[0]), "-i", str(files[1]),
                                           "-o", f"{tmp_path / 'out'}/"])
    assert res.exit_code != 0
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "shape (2, 18, 38, 45)" in lines[0] and "1 channel(s)" in lines[0], res.output
    assert not (tmp_path / "out").exists()
