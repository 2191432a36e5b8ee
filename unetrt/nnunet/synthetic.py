"""Small synthetic nnU-Net results folders, written in nnU-Net v2's own on-disk format.

A results folder (``nnUNet_results/DatasetXXX/<trainer>__<plans>__<configuration>``) holds
``plans.json``, ``dataset.json``, ``dataset_fingerprint.json`` and ``fold_<k>/checkpoint_final.pth``;
the checkpoint is the dict nnU-Net's trainer saves (``network_weights``, ``optimizer_state``,
``grad_scaler_state``, ``logging``, ``_best_ema``, ``current_epoch``, ``init_args``, ``trainer_name``,
``inference_allowed_mirroring_axes``). The networks are randomly initialised the way nnU-Net initialises
them (He init), tiny (few stages, few features) so that tests and demos run in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .network import build_network

__all__ = ["SyntheticCase", "write_results_folder", "synthetic_case", "PLAIN", "RESENC"]

PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESENC = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"


@dataclass
class SyntheticCase:
    """What a synthetic results folder is made of.

    Attributes:
        configuration: ``3d_fullres`` or ``2d``.
        arch: Network class (:data:`PLAIN` or :data:`RESENC`).
        channels: Input channels (modalities).
        normalization: One scheme per channel (``CTNormalization``, ``ZScoreNormalization``, ...).
        labels: ``dataset.json`` labels (a region-based dataset maps names to lists of labels).
        regions_class_order: For region-based datasets.
        mirror_axes: ``inference_allowed_mirroring_axes`` (``None``: no mirroring).
        spacing: Target spacing of the configuration (z, y, x for 3-D; y, x for 2-D).
        patch_size: Patch size of the configuration.
        features: Features per stage.
        folds: Folds written.
        trainer: ``trainer_name`` stored in the checkpoints.
        seed: Weight initialisation seed (fold k uses ``seed + k``).
    """

    configuration: str = "3d_fullres"
    arch: str = PLAIN
    channels: int = 1
    normalization: list[str] = field(default_factory=lambda: ["CTNormalization"])
    labels: dict[str, Any] = field(default_factory=lambda: {"background": 0, "organ": 1, "lesion": 2})
    regions_class_order: list[int] | None = None
    mirror_axes: tuple[int, ...] | None = (0, 1, 2)
    spacing: list[float] = field(default_factory=lambda: [2.0, 0.8, 0.8])
    patch_size: list[int] = field(default_factory=lambda: [16, 32, 32])
    features: list[int] = field(default_factory=lambda: [4, 8, 16])
    folds: tuple[int, ...] = (0, 1)
    trainer: str = "nnUNetTrainer"
    seed: int = 0

    @property
    def dims(self) -> int:
        return len(self.patch_size)


def _topology(case: SyntheticCase) -> tuple[list[list[int]], list[list[int]]]:
    """Strides and kernel sizes like nnU-Net's planner: no pooling along a coarse axis at first."""
    stages = len(case.features)
    coarse = max(case.spacing) / min(case.spacing) > 2 if case.dims == 3 else False
    strides, kernels = [], []
    for s in range(stages):
        if s == 0:
            strides.append([1] * case.dims)
        elif coarse and s == 1:
            strides.append([1] + [2] * (case.dims - 1))
        else:
            strides.append([2] * case.dims)
        kernels.append([1] + [3] * (case.dims - 1) if coarse and s == 0 else [3] * case.dims)
    return strides, kernels


def _architecture(case: SyntheticCase) -> dict[str, Any]:
    strides, kernels = _topology(case)
    conv = "torch.nn.modules.conv.Conv3d" if case.dims == 3 else "torch.nn.modules.conv.Conv2d"
    norm = ("torch.nn.modules.instancenorm.InstanceNorm3d" if case.dims == 3
            else "torch.nn.modules.instancenorm.InstanceNorm2d")
    stages = len(case.features)
    kwargs: dict[str, Any] = {"n_stages": stages, "features_per_stage": list(case.features), "conv_op": conv,
                              "kernel_sizes": kernels, "strides": strides}
    if case.arch == RESENC:
        kwargs["n_blocks_per_stage"] = [1] + [2] * (stages - 1)
    else:
        kwargs["n_conv_per_stage"] = [2] * stages
    kwargs.update({"n_conv_per_stage_decoder": [2] * (stages - 1), "conv_bias": True, "norm_op": norm,
                   "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
                   "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}})
    return {"network_class_name": case.arch, "arch_kwargs": kwargs,
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}


def _intensity(channel: int) -> dict[str, float]:
    base = -200.0 + 150.0 * channel
    return {"max": base + 900.0, "mean": base + 120.0, "median": base + 100.0, "min": base - 400.0,
            "percentile_00_5": base - 300.0, "percentile_99_5": base + 700.0, "std": 180.0 + 10 * channel}


def plans_for(case: SyntheticCase) -> dict[str, Any]:
    """``plans.json`` of a results folder holding this one configuration."""
    spacing3 = case.spacing if case.dims == 3 else [3.0, *case.spacing]
    configuration = {
        "data_identifier": f"nnUNetPlans_{case.configuration}", "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2, "patch_size": list(case.patch_size),
        "median_image_size_in_voxels": [2 * p for p in case.patch_size], "spacing": list(case.spacing),
        "normalization_schemes": list(case.normalization), "use_mask_for_norm": [False] * case.channels,
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                               "force_separate_z": None},
        "architecture": _architecture(case), "batch_dice": False,
    }
    return {
        "dataset_name": "Dataset999_Synthetic", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [float(s) for s in spacing3],
        "original_median_shape_after_transp": [40, 64, 64], "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "configurations": {case.configuration: configuration}, "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {str(c): _intensity(c) for c in range(case.channels)},
    }


def dataset_for(case: SyntheticCase) -> dict[str, Any]:
    """``dataset.json``."""
    data: dict[str, Any] = {"channel_names": {str(c): "CT" if case.normalization[c] == "CTNormalization" else f"MR{c}"
                                              for c in range(case.channels)},
                            "labels": case.labels, "numTraining": 4, "file_ending": ".nii.gz"}
    if case.regions_class_order is not None:
        data["regions_class_order"] = list(case.regions_class_order)
    return data


def _num_outputs(case: SyntheticCase) -> int:
    if case.regions_class_order is not None:
        return len(case.regions_class_order)
    return len(case.labels)


def write_results_folder(folder: str | Path, case: SyntheticCase | None = None) -> Path:
    """Write ``plans.json``, ``dataset.json``, ``dataset_fingerprint.json`` and one checkpoint per fold.

    Returns:
        The folder.
    """
    import torch

    case = case or SyntheticCase()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plans, dataset = plans_for(case), dataset_for(case)
    fingerprint = {"foreground_intensity_properties_per_channel": plans["foreground_intensity_properties_per_channel"],
                   "median_relative_size_after_cropping": 1.0,
                   "shapes_after_crop": [[40, 64, 64]] * 4, "spacings": [plans["original_median_spacing_after_transp"]] * 4}
    for name, data in (("plans.json", plans), ("dataset.json", dataset), ("dataset_fingerprint.json", fingerprint)):
        (folder / name).write_text(json.dumps(data, indent=4))
    arch = plans["configurations"][case.configuration]["architecture"]
    for fold in case.folds:
        torch.manual_seed(case.seed + fold)
        net = build_network(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                            case.channels, _num_outputs(case), initialize=True)
        checkpoint = {
            "network_weights": net.state_dict(),
            "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.01, "momentum": 0.99, "params": [0]}]},
            "grad_scaler_state": None,
            "logging": {"mean_fg_dice": [np.float64(0.5)], "ema_fg_dice": [np.float64(0.5)],
                        "train_losses": [np.float64(-0.3)], "lrs": [0.01], "epoch_start_timestamps": [0.0]},
            "_best_ema": np.float64(0.5), "current_epoch": 1,
            "init_args": {"plans": plans, "configuration": case.configuration, "fold": fold,
                          "dataset_json": dataset, "device": torch.device("cpu")},
            "trainer_name": case.trainer,
            "inference_allowed_mirroring_axes": tuple(case.mirror_axes) if case.mirror_axes is not None else None,
        }
        (folder / f"fold_{fold}").mkdir(exist_ok=True)
        torch.save(checkpoint, folder / f"fold_{fold}" / "checkpoint_final.pth")
    return folder


def synthetic_case(shape: tuple[int, ...], channels: int = 1, seed: int = 0, ct: bool = True) -> np.ndarray:
    """A ``(C, *shape)`` float32 image: a zero border (cropped to nonzero by nnU-Net) around blobs."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    out = np.zeros((channels, *shape), np.float32)
    inner = tuple(slice(max(1, s // 8), s - max(1, s // 8)) for s in shape)
    for c in range(channels):
        centre = rng.uniform(-0.4, 0.4, len(shape))
        r2 = sum((g - m) ** 2 for g, m in zip(grids, centre))
        blob = np.exp(-r2 / 0.15) * (800 if ct else 3.0) + rng.normal(0, 60 if ct else 0.3, shape)
        img = np.zeros(shape, np.float32)
        img[inner] = (blob[inner] + (-100 if ct else 1.0)).astype(np.float32)
        out[c] = img
    return out
