"""Benchmark inputs: the grid's sizes and batches, seeded random tensors or real images.

Real images go through the runtime's preprocessing (:func:`unetrt.runtime.transforms.preprocess`:
channel conversion, ``/ 255``) after :func:`PIL.ImageOps.fit` (centre crop to the grid's aspect
ratio, bicubic resize to its size), so every backend sees exactly the same float32 batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, UnetrtError
from ..fileio import IMAGE_SUFFIXES

__all__ = ["parse_sizes", "parse_batches", "random_batch", "load_images", "image_batch", "check_sizes",
           "IMAGE_SUFFIXES"]



def _items(value: str | int | Sequence) -> list:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, int):
        return [value]
    return list(value)


def parse_sizes(value: str | int | Sequence) -> list[tuple[int, int]]:
    """``"256,512x384"`` / ``[256, (512, 384)]`` -> ``[(256, 256), (512, 384)]`` (H, W).

    Raises:
        UnetrtError: An empty list or an entry that is not ``S`` or ``HxW`` with positive integers.
    """
    sizes = []
    for item in _items(value):
        if isinstance(item, (tuple, list)) and len(item) == 2:
            hw = tuple(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            hw = (item, item)
        elif isinstance(item, str) and re.fullmatch(r"-?\d+(x-?\d+)?", item.lower()):
            parts = [int(p) for p in item.lower().split("x")]
            hw = (parts[0], parts[-1])
        else:
            hw = None
        if hw is None or not all(isinstance(d, int) and d > 0 for d in hw):
            raise UnetrtError(f"invalid size {item!r} in --sizes", "positive sizes S (square) or HxW, comma-separated",
                              "e.g. --sizes 256,512 or --sizes 256x384")
        sizes.append((int(hw[0]), int(hw[1])))
    if not sizes:
        raise UnetrtError("no size given", "at least one size", "e.g. --sizes 256")
    return list(dict.fromkeys(sizes))


def parse_batches(value: str | int | Sequence) -> list[int]:
    """``"1,4"`` -> ``[1, 4]``.

    Raises:
        UnetrtError: An empty list or a batch size that is not a positive integer.
    """
    out = []
    for item in _items(value):
        try:
            n = int(item) if not isinstance(item, (bool, float)) else -1
        except (TypeError, ValueError):
            n = -1
        if n < 1:
            raise UnetrtError(f"invalid batch size {item!r} in --batch", "positive integers, comma-separated",
                              "e.g. --batch 1,4")
        out.append(n)
    if not out:
        raise UnetrtError("no batch size given", "at least one", "e.g. --batch 1")
    return list(dict.fromkeys(out))


def check_sizes(sizes: Sequence[tuple[int, int]], *, name: str, min_size: int, alignment: int,
                model=None, in_channels: int | None = None, source: str = "spec") -> None:
    """Refuse sizes the model cannot take before anything runs.

    Args:
        sizes: ``(H, W)`` pairs.
        name: The model's name for the message.
        min_size: Smallest admissible H and W.
        alignment: H and W must be multiples of this.
        model: When given, each size is also traced on fake tensors (valid-convolution UNets
            refuse some sizes that pass the first two rules).
        in_channels: Input channels for that trace.
        source: Where the rules come from, for the message (``"spec"``, ``"manifest"``).

    Raises:
        UnetrtError: The first size refused, with the admissible rule and the nearest valid size.
    """
    from ..models import output_hw

    rule = f"H and W >= {min_size}" + (f" and multiples of {alignment}" if alignment > 1 else "")
    for h, w in sizes:
        ok = min(h, w) >= min_size and h % alignment == 0 and w % alignment == 0
        if ok and model is not None:
            ok = output_hw(model, h, w, in_channels) is not None
        if not ok:
            near = max(min_size, alignment * math.ceil(max(h, w) / alignment))
            raise UnetrtError(f"size {h}x{w} is not admissible for {name} (per its {source})", rule,
                              f"choose other --sizes, e.g. {near}")


def random_batch(shape: tuple[int, int, int, int], seed: int) -> np.ndarray:
    """Standard-normal float32 of ``shape`` from ``numpy.random.default_rng(seed)``."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def load_images(directory: str | Path) -> list[np.ndarray]:
    """Every image in ``directory`` (sorted by name; stems ending in ``_mask`` skipped) as arrays.

    Raises:
        InputError: Not a directory, or no readable image in it.
    """
    from ..data.images import load_image

    folder = Path(directory).expanduser()
    if not folder.is_dir():
        raise InputError(f"--images {directory} is not a directory", "a folder of images",
                         "check the path")
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith("_mask"))
    if not files:
        raise InputError(f"no image in {folder}", f"files ending in {', '.join(IMAGE_SUFFIXES)}",
                         "point --images at a folder of images")
    return [load_image(path) for path in files]  # every Pillow mode, EXIF orientation, 16-bit depth


def _cover_crop(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``PIL.ImageOps.fit``: the largest centred window of the grid's aspect ratio, bicubic-resized to HxW.

    uint8 grey/RGB/RGBA go through Pillow's own modes; any other dtype is fitted per channel in mode ``F``.
    """
    from PIL import Image, ImageOps

    def fit(array: np.ndarray) -> np.ndarray:
        return np.asarray(ImageOps.fit(Image.fromarray(array), (width, height), method=Image.Resampling.BICUBIC))

    if img.shape[:2] == (height, width):
        return img
    if img.dtype == np.uint8 and (img.ndim == 2 or img.shape[2] in (3, 4)):
        return fit(img)
    planes = img[..., None] if img.ndim == 2 else img
    out = np.stack([fit(np.ascontiguousarray(planes[..., c], dtype=np.float32)) for c in range(planes.shape[2])], -1)
    return out[..., 0] if img.ndim == 2 else out


def image_batch(images: Sequence[np.ndarray], shape: tuple[int, int, int, int]) -> np.ndarray:
    """An NCHW float32 batch: images ``i % len(images)``, resized to cover HxW and centre-cropped.

    Raises:
        InputError: An image whose channels cannot be converted to C.
    """
    from ..runtime.transforms import convert_channels, preprocess

    if not images:
        raise UnetrtError("no images", "at least one image", "pass a folder with images")
    n, c, h, w = shape
    batch = [preprocess(_cover_crop(convert_channels(images[i % len(images)], c), h, w), 1.0, c)[0]
             for i in range(n)]
    return np.ascontiguousarray(np.stack(batch), dtype=np.float32)
