"""Calibration inputs for the FP16 search and INT8 quantization (``--calib-images DIR``).

Images are read and preprocessed by the same code as ``unet-predict`` at ``--scale 1``
(:mod:`unetrt.data.images`: every Pillow mode, EXIF orientation, bit depth, channel conversion,
HWC -> CHW, ``/ 255`` when any value exceeds 1), so the graph is calibrated on what it will be fed. ``.npy``
files hold either an image (HxW, HxWxC: preprocessed the same way) or a network input (CxHxW,
NxCxHxW: used as it is). Before they reach the graph, inputs are padded at the bottom/right (edge
replicate) to an admissible size (:func:`admissible`), as ``unet-predict`` pads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...data.images import load_image, preprocess
from ...errors import CalibrationError, InputError
from ...fileio import IMAGE_SUFFIXES
from ...models.geometry import round_up

__all__ = ["load_calibration", "load_calibration_files", "image_input", "admissible", "common_crop",
           "fit_static", "random_inputs"]


def image_input(img: np.ndarray, in_ch: int, name: str = "image") -> np.ndarray:
    """An HxW / HxWxC image as the network's ``1xCxHxW`` float32 input, exactly as ``unet-predict``
    preprocesses it at scale 1 (:func:`unetrt.data.images.preprocess`).

    Raises:
        CalibrationError: Not an image, or a channel count the model cannot take.
    """
    try:
        return preprocess(img, 1.0, in_ch)
    except InputError as exc:
        raise CalibrationError(f"calibration input {name}: {exc.what}", exc.expected,
                               "use images with the model's channel count") from None


def _from_array(arr: np.ndarray, in_ch: int, name: str) -> np.ndarray:
    """A ``.npy`` array as a 1xCxHxW / NxCxHxW float32 network input."""
    arr = np.asarray(arr)
    image_like = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (1, 2, 3, 4) and arr.shape[0] > 4)
    if image_like:
        return image_input(arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr, in_ch, name)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[0] < 1:
        raise CalibrationError(f"calibration array {name} has shape {arr.shape}",
                               "HxW or HxWxC (an image) or CxHxW / NxCxHxW (a network input)",
                               "save arrays in one of those layouts")
    if arr.shape[1] != in_ch:
        raise CalibrationError(f"calibration array {name} has {arr.shape[1]} channels (shape {arr.shape})",
                               f"{in_ch} channels, the model's input", "use inputs matching the model")
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise CalibrationError(f"calibration array {name} is not finite numeric data", "finite numbers",
                               "fix the array")
    return np.ascontiguousarray(arr, dtype=np.float32)


def load_calibration_files(directory: str | Path, in_ch: int, limit: int = 8) -> list[tuple[str, np.ndarray]]:
    """Up to ``limit`` calibration inputs from a folder, in file-name order, with their file names.

    Args:
        directory: Folder of images (png, jpg, ...) and/or ``.npy`` arrays.
        in_ch: The model's input channels.
        limit: Most files read (>= 1).

    Returns:
        ``[(file name, NxCxHxW float32)]`` at the files' own sizes (see :func:`admissible`).

    Raises:
        CalibrationError: Not a folder, no usable file, an unreadable file, a channel count the
            model cannot take, or ``limit < 1``.
    """
    if limit < 1:
        raise CalibrationError(f"calibration count {limit}", "at least 1 input", "pass --calib-count 1 or more")
    root = Path(directory)
    if not root.is_dir():
        raise CalibrationError(f"--calib-images {directory} is not a directory", "a folder of images or .npy files",
                               "check the path")
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        raise CalibrationError(f"cannot list --calib-images {directory}: {exc.strerror}", "a readable folder",
                               "check its permissions") from None
    files = [p for p in entries if p.is_file() and p.suffix.lower() in (*IMAGE_SUFFIXES, ".npy")
             and not p.stem.endswith(("_mask", "_OUT", "_OVERLAY"))][:limit]
    if not files:
        raise CalibrationError(f"no images or .npy files in {directory}", "at least one calibration input "
                               f"({', '.join(IMAGE_SUFFIXES)}, .npy; *_mask files are skipped)", "add files")
    out = []
    for p in files:
        try:
            if p.suffix.lower() == ".npy":
                out.append((p.name, _from_array(np.load(p, allow_pickle=False), in_ch, p.name)))
                continue
            arr = load_image(p, in_ch)
        except InputError as exc:
            raise CalibrationError(f"cannot read calibration input {p.name}: {exc.what}",
                                   "a readable image or .npy array", "remove or replace the file") from None
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"cannot read calibration input {p.name}: {exc}",
                                   "a readable image or .npy array", "remove or replace the file") from None
        out.append((p.name, image_input(arr, in_ch, p.name)))
    return out


def load_calibration(directory: str | Path, in_ch: int, limit: int = 8) -> list[np.ndarray]:
    """The arrays of :func:`load_calibration_files` (FP16 search inputs)."""
    return [arr for _, arr in load_calibration_files(directory, in_ch, limit)]


def admissible(arrays: Sequence[np.ndarray], alignment: int, min_size: int | None) -> list[np.ndarray]:
    """Pad each input at the bottom/right (edge replicate) to multiples of ``alignment`` and at least
    ``min_size``, as ``unet-predict`` does before inference."""
    out = []
    for a in arrays:
        h, w = a.shape[-2:]
        th, tw = (round_up(max(s, min_size or 1, 1), alignment) for s in (h, w))
        pad = [(0, 0)] * (a.ndim - 2) + [(0, th - h), (0, tw - w)]
        out.append(np.pad(a, pad, mode="edge") if (th, tw) != (h, w) else a)
    return out


def common_crop(arrays: Sequence[np.ndarray], alignment: int, min_size: int | None) -> list[np.ndarray]:
    """Centre-crop every input to one shared admissible H x W (histogram calibrators need one shape).

    The size is the smallest H and W among the inputs, rounded down to ``alignment``; inputs smaller
    than ``min_size`` are padded first.
    """
    padded = admissible(arrays, alignment, min_size)
    h = min(a.shape[-2] for a in padded)
    w = min(a.shape[-1] for a in padded)
    h, w = max(h - h % alignment, alignment), max(w - w % alignment, alignment)
    out = []
    for a in padded:
        top, left = (a.shape[-2] - h) // 2, (a.shape[-1] - w) // 2
        out.append(np.ascontiguousarray(a[..., top:top + h, left:left + w]))
    return out


def fit_static(arrays: Sequence[np.ndarray], shape: Sequence[int]) -> list[np.ndarray]:
    """Inputs for a static graph of ``shape`` (N, C, H, W): each input edge-padded to at least H x W and
    centre-cropped to it, then ``N`` consecutive inputs (cycling) stacked into one batch."""
    n, _, h, w = (int(d) for d in shape)
    fitted = []
    for a in admissible(arrays, 1, max(h, w)):
        top, left = (a.shape[-2] - h) // 2, (a.shape[-1] - w) // 2
        fitted.extend(a[i:i + 1, :, top:top + h, left:left + w] for i in range(a.shape[0]))
    return [np.ascontiguousarray(np.concatenate([fitted[(k * n + j) % len(fitted)] for j in range(n)]))
            for k in range(max(1, len(fitted) // n))]


def random_inputs(shapes: Sequence[tuple[int, ...]], seed: int = 7) -> list[np.ndarray]:
    """Uniform [0, 1) float32 inputs of the given NCHW shapes: the value range of preprocessed images."""
    rng = np.random.default_rng(seed)
    return [rng.random(tuple(s), dtype=np.float32) for s in shapes]
