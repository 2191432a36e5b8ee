"""One volume in, one label volume out, for volumetric (NCDHW) models.

A ``DxHxW`` (one channel) or ``CxDxHxW`` array is padded at the far end of each spatial axis to
the model's alignment and minimum size, run in one ``infer`` call or, when larger than what the
runner takes (an engine profile's max, or ``tile``), by sliding-window inference over D, H and W;
the logits are cropped back and turned into labels (argmax over classes, or a sigmoid threshold
for one class). Intensities are passed through as float32: normalise volumes as in training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, MissingDependencyError
from .base import Runner
from .tiling import sliding_window

__all__ = ["VolumePrediction", "predict_volume", "read_volume", "write_volume", "VOLUME_SUFFIXES"]

VOLUME_SUFFIXES = (".npy", ".nii", ".nii.gz")


@dataclass
class VolumePrediction:
    """A label volume at the input's size, plus how it was produced."""

    mask: np.ndarray
    logits_shape: tuple[int, ...]
    mode: str                        # "direct", "aligned" or "sliding-window"
    timings_ms: dict[str, float] = field(default_factory=dict)


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def _as_batch(volume: Any, channels: int | None) -> np.ndarray:
    v = np.asarray(volume)
    if v.ndim == 3:
        v = v[None]
    if v.ndim != 4:
        raise InputError(f"volume of shape {v.shape}", "DxHxW (one channel) or CxDxHxW",
                         "pass one volume (for 2-D images use unet-predict on image files)")
    if channels is not None and v.shape[0] != channels:
        raise InputError(f"volume with {v.shape[0]} channel(s)", f"{channels} channel(s) (CxDxHxW)",
                         "stack the modalities on the first axis")
    return np.ascontiguousarray(v[None], dtype=np.float32)


def predict_volume(runner: Runner, volume: Any, *, tile: int | tuple[int, int, int] | None = None,
                   mask_threshold: float = 0.5, pad_mode: str = "edge", overlap=None) -> VolumePrediction:
    """Segment one volume with an (active) runner of a volumetric model.

    Args:
        runner: A runner whose input is ``NxCxDxHxW``.
        volume: ``DxHxW`` or ``CxDxHxW`` array.
        tile: Sliding-window tile (one int or D, H, W); default: the runner's max shape when the
            volume is larger than it, else one pass.
        mask_threshold: Sigmoid threshold of a one-class model.
        pad_mode: ``np.pad`` mode for the alignment padding.
        overlap: Sliding-window overlap (default a quarter of the tile).

    Raises:
        InputError: a 2-D model, a volume of the wrong rank or channel count.
    """
    t0 = time.perf_counter()
    name, c = next(iter(runner.input_constraints.items()))
    if len(c.shape) != 5:
        raise InputError(f"a volume given to a model of {len(c.shape)}-D inputs ({c.describe()})",
                         "a volumetric model (NxCxDxHxW input)", "segment images with unet-predict, or export a 3-D model")
    x = _as_batch(volume, c.shape[1])
    sizes = x.shape[2:]
    targets = [_round_up(max(s, c.min_size), c.alignment) for s in sizes]
    if list(targets) != list(sizes):
        x = np.pad(x, [(0, 0), (0, 0)] + [(0, t - s) for t, s in zip(targets, sizes)], mode=pad_mode)
    limit = tuple(c.max_shape[2:]) if c.max_shape else None
    too_big = (limit is not None and any(t > m for t, m in zip(targets, limit))) or tile is not None
    t1 = time.perf_counter()
    if too_big:
        want = tile if tile is not None else limit
        want = (want,) * 3 if isinstance(want, (int, np.integer)) else tuple(want)
        floor = _round_up(c.min_size, c.alignment)
        tiles = tuple(max(floor, min(int(w), t) // c.alignment * c.alignment) for w, t in zip(want, targets))
        logits = sliding_window(runner, x.astype(c.dtype), tiles, overlap=overlap)
        mode = "sliding-window"
    else:
        out_name = next(iter(runner.output_metadata))
        logits = np.asarray(runner.infer({name: x.astype(c.dtype)})[out_name])
        mode = "aligned" if list(targets) != list(sizes) else "direct"
    logits = np.asarray(logits, dtype=np.float32)[(0, slice(None), *(slice(0, s) for s in sizes))]
    t2 = time.perf_counter()
    if logits.shape[0] > 1:
        mask = np.argmax(logits, axis=0).astype(np.uint8 if logits.shape[0] <= 256 else np.int32)
    else:
        mask = (1 / (1 + np.exp(-logits[0])) > mask_threshold).astype(np.uint8)
    t3 = time.perf_counter()
    return VolumePrediction(mask, (1, *logits.shape), mode, {"preprocess": (t1 - t0) * 1e3,
                                                            "infer": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3})


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


def _nibabel():
    try:
        import nibabel
    except ImportError:
        raise MissingDependencyError("reading/writing NIfTI volumes needs nibabel, which is not installed",
                                     "nibabel importable", "pip install 'unetrt[nifti]' (or pip install nibabel)"
                                     ) from None
    return nibabel


def read_volume(path: str | Path) -> tuple[np.ndarray, Any]:
    """Read a ``.npy`` (DxHxW or CxDxHxW) or NIfTI volume; returns (array, NIfTI affine or None).

    NIfTI arrays (x, y, z[, c]) are transposed to (c,) z, y, x so D is the slice axis.
    """
    path = Path(path)
    try:
        if _is_nifti(path):
            img = _nibabel().load(str(path))
            data = np.asarray(img.dataobj, dtype=np.float32)
            data = data.T if data.ndim == 3 else np.moveaxis(data, -1, 0).transpose(0, 3, 2, 1)
            return data, img.affine
        return np.load(path, allow_pickle=False), None
    except MissingDependencyError:
        raise
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read volume {path}: {exc}", "a .npy array or a NIfTI file",
                         "check the file") from None


def write_volume(mask: np.ndarray, path: str | Path, affine: Any = None) -> None:
    """Write a label volume atomically as ``.npy`` or NIfTI (D, H, W back to x, y, z)."""
    from ..fileio import atomic_path

    path = Path(path)
    if _is_nifti(path):
        nib = _nibabel()
        img = nib.Nifti1Image(np.ascontiguousarray(mask.T), affine if affine is not None else np.eye(4))
        suffix = ".nii.gz" if path.name.lower().endswith(".gz") else ".nii"
        with atomic_path(path) as tmp:
            tmp_named = Path(str(tmp) + suffix)
            nib.save(img, str(tmp_named))
            tmp_named.replace(tmp)
        return
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, mask, allow_pickle=False)
