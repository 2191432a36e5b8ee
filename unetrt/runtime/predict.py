"""One image in, one mask out: preprocessing, alignment or tiling, inference, post-processing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import InputError
from .base import Runner
from .tiling import overlap_tile, sliding_window
from .transforms import align_pad, crop, postprocess, preprocess

#: The 2015 paper's tile: overlap-tile inputs default to the admissible size nearest to it.
PAPER_TILE = 572


@dataclass
class Prediction:
    """A class mask at the image's full size, plus how it was produced."""

    mask: np.ndarray
    logits_shape: tuple[int, ...]
    mode: str                       # "direct", "aligned", "overlap-tile" or "sliding-window"
    timings_ms: dict[str, float] = field(default_factory=dict)


def _constraint(runner: Runner):
    (name, c), = list(runner.input_constraints.items())[:1]
    return name, c


def _geometry(runner: Runner) -> str:
    """``"same"`` or ``"valid"`` from the manifest (``"same"`` without one)."""
    return runner.manifest.output.geometry if runner.manifest is not None else "same"


def _channels(c) -> int | None:
    return c.shape[1] if len(c.shape) == 4 else None


def _infer_aligned(runner: Runner, name: str, c, x: np.ndarray, pad_mode: str) -> tuple[np.ndarray, bool]:
    """One ``infer`` on ``x`` padded to the alignment / minimum size, cropped back; (logits, padded?)."""
    padded, box = align_pad(x, c.alignment, pad_mode, min_size=c.min_size)
    logits = crop(runner.infer({name: padded.astype(c.dtype)})[next(iter(runner.output_metadata))], box)
    return logits, padded.shape != x.shape


def _valid_tile(min_size: int, period: int = 16) -> int:
    """Largest admissible tile ≤ 572 that keeps every pooling even (min_size + k·period)."""
    return min_size + period * max(0, (PAPER_TILE - min_size) // period)


def predict(runner: Runner, image: Any, *, scale: float = 1.0, mask_threshold: float = 0.5,
            tile: int | None = None, pad_mode: str = "replicate",
            progress: Callable[[int, int], None] | None = None) -> Prediction:
    """Segment one image (HxW or HxWxC array / PIL image) with an active runner.

    Same-size models get the image padded to the manifest's alignment (``pad_mode``) and the
    output cropped back; images larger than an engine profile (or than ``tile``) go through
    sliding-window inference. Valid-convolution models (shrinking output) use overlap-tile
    inference with mirror padding so the mask covers the whole image. The logits are resized
    to the full image size and turned into a mask exactly like milesial's ``predict_img``.

    Raises:
        InputError: an image smaller than the model's minimum, or channels that cannot be converted.
    """
    t0 = time.perf_counter()
    full = np.asarray(image)
    h_full, w_full = full.shape[:2]
    name, c = _constraint(runner)
    x = preprocess(image, scale, _channels(c))
    h, w = x.shape[-2:]
    t1 = time.perf_counter()
    if _geometry(runner) == "valid":
        size = tile or _valid_tile(c.min_size)
        logits, mode = overlap_tile(runner, x, size, period=16, progress=progress), "overlap-tile"
    else:
        if min(h, w) < c.min_size:
            raise InputError(f"image {w}x{h} (after --scale {scale:g}) is smaller than the model's minimum "
                             f"{c.min_size}x{c.min_size}", f"H and W >= {c.min_size}",
                             "use a larger image or a larger --scale")
        limit = c.max_shape[-2:] if c.max_shape else None
        too_big = (limit is not None and (h > limit[0] or w > limit[1])) or (tile is not None and max(h, w) > tile)
        if too_big:
            padded, box = align_pad(x, c.alignment, pad_mode, min_size=c.min_size)
            tile_hw = tile or min(limit)
            tile_hw -= tile_hw % c.alignment
            logits = crop(sliding_window(runner, padded, tile_hw, progress=progress), box)
            mode = "sliding-window"
        else:
            logits, was_padded = _infer_aligned(runner, name, c, x, pad_mode)
            mode = "aligned" if was_padded else "direct"
    t2 = time.perf_counter()
    mask = postprocess(np.asarray(logits, dtype=np.float32), (h_full, w_full), mask_threshold)
    t3 = time.perf_counter()
    return Prediction(mask, tuple(np.shape(logits)), mode,
                      {"preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3})


def predict_batch(runner: Runner, images: list[Any], *, scale: float = 1.0, mask_threshold: float = 0.5,
                  pad_mode: str = "replicate") -> list[Prediction]:
    """Segment images of one size in a single ``infer`` call (batch dimension); same-size models
    within the engine profile only. Falls back to :func:`predict` per image otherwise."""
    name, c = _constraint(runner)
    shapes = {np.asarray(im).shape for im in images}
    max_batch = c.max_shape[0] if c.max_shape else None
    if len(images) == 1 or _geometry(runner) != "same" or len(shapes) != 1 or (max_batch and len(images) > max_batch):
        return [predict(runner, im, scale=scale, mask_threshold=mask_threshold, pad_mode=pad_mode) for im in images]
    t0 = time.perf_counter()
    xs = np.concatenate([preprocess(im, scale, _channels(c)) for im in images])
    h_full, w_full = np.asarray(images[0]).shape[:2]
    if min(xs.shape[-2:]) < c.min_size or (c.max_shape and any(a > b for a, b in zip(xs.shape[-2:], c.max_shape[-2:]))):
        return [predict(runner, im, scale=scale, mask_threshold=mask_threshold, pad_mode=pad_mode) for im in images]
    t1 = time.perf_counter()
    logits, _ = _infer_aligned(runner, name, c, xs, pad_mode)
    t2 = time.perf_counter()
    out = []
    for i in range(len(images)):
        t = time.perf_counter()
        mask = postprocess(np.asarray(logits[i:i + 1], dtype=np.float32), (h_full, w_full), mask_threshold)
        per = len(images)
        out.append(Prediction(mask, tuple(logits[i:i + 1].shape), f"batched x{per}",
                              {"preprocess": (t1 - t0) * 1e3 / per, "infer": (t2 - t1) * 1e3 / per,
                               "postprocess": (time.perf_counter() - t) * 1e3}))
    return out


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour per class (class 0 left untouched) over an RGB/gray image; uint8 HxWx3."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.float32)
    if img.max() <= 1:
        img = img * 255
    palette = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                        [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]], dtype=np.float32)
    colours = palette[np.asarray(mask) % len(palette)]
    fg = (np.asarray(mask) > 0)[..., None]
    out = np.where(fg, (1 - alpha) * img + alpha * colours, img)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
