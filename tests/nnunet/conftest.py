"""Shared fixtures of the nnU-Net tests: small synthetic results folders in nnU-Net's own format, their
unetrt exports (built once per session) and the real ``nnUNetPredictor``'s predictions on the same cases.

Cases (each a results folder with 2 folds of a random-init network, He-initialised as nnU-Net does):

- ``plain3d``: PlainConvUNet, 3d_fullres, CT normalization, mirroring over (0, 1, 2), anisotropic target
  spacing (2.0, 0.8, 0.8: the planner's 1x3x3 first kernel and no first pooling along z), exported with
  FP16 as well; the case has yet another spacing, so it is resampled there and back.
- ``resenc2d``: ResidualEncoderUNet, 2d, two channels (ZScore + NoNormalization), no mirroring, a
  region-based label set (sigmoid outputs, ``regions_class_order``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("nnunetv2", reason="nnunetv2 (dev extra) is the reference predictor")


@dataclass
class Built:
    """A results folder, its export and one case with nnUNetPredictor's answer."""

    name: str
    results: Path
    export: Path
    image: np.ndarray
    spacing: list[float]
    ref_seg: np.ndarray
    ref_probs: np.ndarray
    mirroring: bool


def case_specs() -> dict[str, tuple[Any, tuple[int, ...], list[float], bool]]:
    from unetrt.nnunet.synthetic import PLAIN, RESENC, SyntheticCase

    plain3d = SyntheticCase(configuration="3d_fullres", arch=PLAIN, normalization=["CTNormalization"],
                            mirror_axes=(0, 1, 2), spacing=[2.0, 0.8, 0.8], patch_size=[16, 32, 32],
                            features=[4, 8, 16], seed=3)
    resenc2d = SyntheticCase(configuration="2d", arch=RESENC, channels=2,
                             normalization=["ZScoreNormalization", "NoNormalization"],
                             labels={"background": 0, "whole": [1, 2], "core": 2}, regions_class_order=[1, 2],
                             mirror_axes=None, spacing=[0.8, 0.8], patch_size=[32, 32], features=[4, 8, 16], seed=5)
    #               case, image shape (Z, Y, X), spacing of the case (z, y, x), CT intensities
    return {"plain3d": (plain3d, (18, 38, 45), [2.6, 0.9, 0.7], True),
            "resenc2d": (resenc2d, (3, 41, 37), [4.0, 0.7, 0.9], False)}


def reference_predictor(results: Path, use_mirroring: bool = True):
    """The real nnUNetPredictor on the CPU over every fold of ``results``."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=use_mirroring,
                                perform_everything_on_device=False, device=torch.device("cpu"), verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(results), use_folds=(0, 1))
    return predictor


def reference_predict(results: Path, image: np.ndarray, spacing: list[float], use_mirroring: bool = True):
    """``(segmentation, probabilities)`` of nnUNetPredictor for a ``(C, Z, Y, X)`` case."""
    predictor = reference_predictor(results, use_mirroring)
    seg, probs = predictor.predict_single_npy_array(image.copy(), {"spacing": list(spacing)}, None, None, True)
    return np.asarray(seg), np.asarray(probs, np.float32)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict[str, Built]:
    """Every case: results folder, unetrt export (engine off), and nnUNetPredictor's prediction."""
    from unetrt.exporter.config import ExportConfig
    from unetrt.nnunet.export import export_nnunet
    from unetrt.nnunet.synthetic import synthetic_case, write_results_folder

    root = tmp_path_factory.mktemp("nnunet")
    out: dict[str, Built] = {}
    for name, (case, shape, spacing, ct) in case_specs().items():
        results = write_results_folder(root / name / "results", case)
        fp16 = name == "plain3d"
        export_nnunet(results, root / name / "export", base=ExportConfig(engine=False, verify=False, fp16=fp16))
        image = synthetic_case(shape, channels=case.channels, seed=11, ct=ct)
        seg, probs = reference_predict(results, image, spacing, case.mirror_axes is not None)
        out[name] = Built(name, results, root / name / "export", image, spacing, seg, probs,
                          case.mirror_axes is not None)
    return out
