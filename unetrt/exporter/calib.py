"""Calibration inputs for the FP16 search from a folder (``--calib-images DIR``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UnetrtError
from ..fileio import IMAGE_SUFFIXES


def _to_nchw(arr: np.ndarray, in_ch: int, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3 and arr.shape[-1] in (1, 3, 4) and arr.shape[0] not in (1, 3):
        arr = arr.transpose(2, 0, 1)  # HWC -> CHW
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise UnetrtError(f"calibration input {name} has shape {arr.shape}", "HxW, HxWxC, CxHxW or NxCxHxW",
                          "save arrays in one of those layouts")
    if arr.shape[1] == 4 and in_ch == 3:
        arr = arr[:, :3]
    if arr.shape[1] == 1 and in_ch == 3:
        arr = np.repeat(arr, 3, axis=1)
    if arr.shape[1] == 3 and in_ch == 1:
        arr = (arr * np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(axis=1, keepdims=True)
    if arr.shape[1] != in_ch:
        raise UnetrtError(f"calibration input {name} has {arr.shape[1]} channels", f"{in_ch} channels",
                          "use images matching the model's input")
    arr = arr.astype(np.float32)
    return arr / 255.0 if arr.max() > 1 else arr


def load_calibration(directory: str | Path, in_ch: int, limit: int = 8) -> list[np.ndarray]:
    """Up to ``limit`` inputs (NCHW float32): ``.npy`` arrays and images (/255 like milesial)."""
    root = Path(directory)
    if not root.is_dir():
        raise UnetrtError(f"--calib-images {directory} is not a directory", "a folder of images or .npy files",
                          "check the path")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in (*IMAGE_SUFFIXES, ".npy"))[:limit]
    if not files:
        raise UnetrtError(f"no images or .npy files in {directory}", "at least one calibration input",
                          "add files (png/jpg/npy)")
    out = []
    for p in files:
        if p.suffix.lower() == ".npy":
            out.append(_to_nchw(np.load(p, allow_pickle=False), in_ch, p.name))
            continue
        from PIL import Image

        try:
            with Image.open(p) as img:
                out.append(_to_nchw(np.asarray(img), in_ch, p.name))
        except OSError as exc:
            raise UnetrtError(f"cannot read calibration image {p.name}: {exc}", "a readable image",
                              "remove or replace the file") from exc
    return out
