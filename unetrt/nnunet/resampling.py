"""nnU-Net's default resampling (``resample_data_or_seg_to_shape``) for images and logits, without nnunetv2.

The rule nnU-Net plans with: when either spacing is anisotropic (largest / smallest > 3) along exactly one
axis, every slice across that axis is resized in-plane with ``order`` and the axis itself is then
interpolated with ``order_z`` (0: nearest); otherwise the volume is resized with ``order`` in one go.
In-plane resizing is scikit-image's ``resize`` (edge mode, no anti-aliasing); the separate axis uses
scipy's ``zoom`` on pixel-centred grids (``grid_mode``), the same sample positions. Tests compare the
result with nnunetv2's function on anisotropic and isotropic spacings.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import MissingDependencyError, ModelConfigError

__all__ = ["resample_to_shape", "separate_axis", "ANISO_THRESHOLD"]

#: Spacing ratio above which nnU-Net resamples the coarse axis separately.
ANISO_THRESHOLD = 3.0


def _coarse_axes(spacing: Sequence[float]) -> list[int]:
    top = max(spacing)
    return [i for i, s in enumerate(spacing) if top / s == 1]


def separate_axis(force_separate_z: bool | None, current: Sequence[float], new: Sequence[float],
                  threshold: float = ANISO_THRESHOLD) -> int | None:
    """The axis resampled on its own (``None``: resample all axes together)."""
    if force_separate_z is not None:
        axes = _coarse_axes(current) if force_separate_z else None
    elif max(current) / min(current) > threshold:
        axes = _coarse_axes(current)
    elif max(new) / min(new) > threshold:
        axes = _coarse_axes(new)
    else:
        axes = None
    return axes[0] if axes is not None and len(axes) == 1 else None


def resample_to_shape(data: np.ndarray, new_shape: Sequence[int], current_spacing: Sequence[float],
                      new_spacing: Sequence[float], *, is_seg: bool = False, order: int = 3, order_z: int = 0,
                      force_separate_z: bool | None = False,
                      separate_z_anisotropy_threshold: float = ANISO_THRESHOLD) -> np.ndarray:
    """``(C, X, Y, Z)`` ``data`` resampled to ``new_shape`` (the plans' kwargs are the keyword arguments).

    Raises:
        ModelConfigError: ``is_seg`` (segmentations are never resampled by the predictor) or a rank other than 4.
        MissingDependencyError: scikit-image or scipy is missing.
    """
    if is_seg:
        raise ModelConfigError("the plans resample data with is_seg=True", "is_seg false for images and logits",
                               "fix resampling_fn_*_kwargs in plans.json")
    if data.ndim != 4 or len(new_shape) != 3:
        raise ModelConfigError(f"resampling of a {data.ndim}-D array to {list(new_shape)}",
                               "a (C, X, Y, Z) array and 3 sizes", "this is a unetrt bug: please report it")
    try:
        from scipy.ndimage import zoom
        from skimage.transform import resize
    except ImportError as exc:
        raise MissingDependencyError(f"{exc.name} is not installed", "scipy and scikit-image for nnU-Net's "
                                     "resampling", "pip install 'unetrt[nnunet]'") from None
    shape, new_shape = tuple(data.shape[1:]), tuple(int(s) for s in new_shape)
    if shape == new_shape:
        return data
    axis = separate_axis(force_separate_z, current_spacing, new_spacing, separate_z_anisotropy_threshold)
    out = np.zeros((data.shape[0], *new_shape), data.dtype)
    for c in range(data.shape[0]):
        channel = data[c].astype(np.float64, copy=False)
        if axis is None:
            out[c] = resize(channel, new_shape, order, mode="edge", anti_aliasing=False)
            continue
        plane = [n for i, n in enumerate(new_shape) if i != axis]
        slices = np.moveaxis(channel, axis, 0)
        tmp = np.stack([resize(s, plane, order, mode="edge", anti_aliasing=False) for s in slices])
        if shape[axis] != new_shape[axis]:
            tmp = zoom(tmp, (new_shape[axis] / shape[axis], 1, 1), order=order_z, mode="nearest", grid_mode=True)
        out[c] = np.moveaxis(tmp, 0, axis)
    return out
