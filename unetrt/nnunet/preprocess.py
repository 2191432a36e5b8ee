"""nnU-Net's preprocessing and its inverse, driven by a manifest's ``nnunet`` section.

Order as in nnU-Net's ``DefaultPreprocessor``: transpose -> crop to the nonzero region -> normalise
(per channel, before resampling) -> resample to the target spacing; the prediction goes back through
resample -> uncrop -> transpose. Resampling is nnU-Net's default rule (:mod:`unetrt.nnunet.resampling`),
so prediction needs no nnunetv2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..artifacts.manifest import NnunetResampling, NnunetSection
from ..errors import InputError, ModelConfigError

__all__ = ["Preprocessed", "preprocess", "logits_to_output", "normalize_channel", "resampling_function"]


@dataclass
class Preprocessed:
    """A preprocessed case and what is needed to map predictions back."""

    data: np.ndarray
    shape_before_cropping: tuple[int, ...]
    bbox: list[list[int]]
    shape_after_cropping: tuple[int, ...]
    original_spacing: list[float]
    target_spacing: list[float]


def resampling_function(spec: NnunetResampling) -> Callable[..., np.ndarray]:
    """``fn(data, new_shape, current_spacing, new_spacing)`` of the plans."""
    if spec.function != "resample_data_or_seg_to_shape":
        raise ModelConfigError(f"resampling function {spec.function!r} of the plans is not supported",
                               "resample_data_or_seg_to_shape (nnU-Net's default)", "re-plan with the default")
    from .resampling import resample_to_shape as fn

    kwargs = dict(spec.kwargs)
    return lambda data, shape, current, new: fn(data, shape, current, new, **kwargs)


def _nonzero_bbox(data: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    from scipy.ndimage import binary_fill_holes

    mask = np.any(data != 0, axis=0)
    mask = binary_fill_holes(mask)
    where = np.argwhere(mask)
    if where.size == 0:
        raise InputError("the image is zero everywhere", "an image with nonzero voxels", "check the input file")
    lo, hi = where.min(0), where.max(0) + 1
    return mask, [[int(a), int(b)] for a, b in zip(lo, hi)]


def normalize_channel(image: np.ndarray, scheme: str, props: dict[str, float], mask: np.ndarray | None) -> np.ndarray:
    """One channel with nnU-Net's normalization ``scheme`` (float32, in place where possible)."""
    image = image.astype(np.float32, copy=False)
    eps = 1e-8
    if scheme == "CTNormalization":
        np.clip(image, props["percentile_00_5"], props["percentile_99_5"], out=image)
        image -= props["mean"]
        image /= max(props["std"], eps)
    elif scheme == "ZScoreNormalization":
        if mask is not None:
            mean, std = image[mask].mean(), image[mask].std()
            image[mask] = (image[mask] - mean) / max(std, eps)
        else:
            mean, std = image.mean(), image.std()
            image -= mean
            image /= max(std, eps)
    elif scheme == "NoNormalization":
        pass
    elif scheme == "RescaleTo01Normalization":
        image -= image.min()
        image /= np.clip(image.max(), a_min=eps, a_max=None)
    elif scheme == "RGBTo01Normalization":
        image /= 255.0
    else:
        raise ModelConfigError(f"normalization scheme {scheme!r} is not supported",
                               "CTNormalization, ZScoreNormalization, NoNormalization, RescaleTo01Normalization "
                               "or RGBTo01Normalization", "re-plan with one of those")
    return image


def preprocess(image: np.ndarray, spacing: list[float], nn: NnunetSection) -> Preprocessed:
    """``(C, *spatial)`` image at ``spacing`` (file axis order, as nnU-Net's readers return) -> network input.

    Raises:
        InputError: Wrong channel count, rank or spacing.
    """
    channels = len(nn.channel_names)
    if image.ndim != 4 or image.shape[0] != channels:
        raise InputError(f"the case has shape {tuple(image.shape)}",
                         f"{channels} channel(s) of a 3-D volume (C x Z x Y x X), as named in dataset.json "
                         f"({', '.join(nn.channel_names.values())})", "pass one file per channel (_0000, _0001, ...)")
    if spacing is None or len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise InputError(f"the case has spacing {spacing}", "3 positive spacings (one per axis)",
                         "read the image with its header (NIfTI/NRRD/MHA) or pass the spacing")
    data = image.astype(np.float32).transpose([0, *[a + 1 for a in nn.transpose_forward]])
    original = [float(spacing[a]) for a in nn.transpose_forward]
    shape_before = tuple(data.shape[1:])
    mask, bbox = _nonzero_bbox(data)
    crop = tuple(slice(a, b) for a, b in bbox)
    data = np.ascontiguousarray(data[(slice(None), *crop)])
    mask = mask[crop]
    target = list(nn.spacing) if len(nn.spacing) == 3 else [original[0], *nn.spacing]
    new_shape = [int(round(o / t * s)) for o, t, s in zip(original, target, data.shape[1:])]
    for c in range(channels):
        props = nn.intensity_properties.get(str(c), {})
        use_mask = mask if nn.use_mask_for_norm[c] else None
        data[c] = normalize_channel(data[c], nn.normalization_schemes[c], props, use_mask)
    shape_after = tuple(data.shape[1:])
    data = resampling_function(nn.resampling_data)(data, new_shape, original, target)
    return Preprocessed(np.asarray(data, np.float32), shape_before, bbox, shape_after, original, target)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(0, keepdims=True))
    return e / e.sum(0, keepdims=True)


def logits_to_output(logits: np.ndarray, pre: Preprocessed, nn: NnunetSection,
                     probabilities: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Network-space logits ``(K, *shape)`` -> ``(segmentation, probabilities or None)`` in the input's space.

    As nnU-Net exports: resample the logits to the cropped original shape, softmax (sigmoid for
    region-based datasets), labels by argmax (regions: channel > 0.5 writes its label in
    ``regions_class_order``), paste into the uncropped volume, transpose back.
    """
    logits = resampling_function(nn.resampling_probabilities)(
        logits.astype(np.float32), list(pre.shape_after_cropping), pre.target_spacing, pre.original_spacing)
    logits = np.asarray(logits, np.float32)
    regions = nn.regions_class_order is not None
    probs = 1.0 / (1.0 + np.exp(-logits)) if regions else _softmax(logits)
    if regions:
        seg = np.zeros(logits.shape[1:], np.uint8)
        for i, label in enumerate(nn.regions_class_order):
            seg[probs[i] > 0.5] = label
    else:
        seg = logits.argmax(0).astype(np.uint8)
    crop = tuple(slice(a, b) for a, b in pre.bbox)
    full = np.zeros(pre.shape_before_cropping, np.uint8)
    full[crop] = seg
    full = full.transpose(nn.transpose_backward)
    out_probs = None
    if probabilities:
        p = np.zeros((probs.shape[0], *pre.shape_before_cropping), np.float32)
        if not regions:
            p[0] = 1.0
        p[(slice(None), *crop)] = probs
        out_probs = p.transpose([0, *[a + 1 for a in nn.transpose_backward]])
    return full, out_probs


def pad_to(data: np.ndarray, patch: list[int]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Zero-pad ``(C, *spatial)`` so every spatial axis is at least ``patch`` (split like nnU-Net: half below)."""
    spatial = data.shape[1:]
    diff = [max(0, p - s) for p, s in zip(patch, spatial)]
    pads = [(d // 2, d // 2 + d % 2) for d in diff]
    if any(diff):
        data = np.pad(data, [(0, 0), *pads])
    revert = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, spatial))
    return data, revert

