"""Logits -> class masks -> mask files, in numpy on the CPU (no torch).

:func:`logits_to_mask` is milesial's ``predict_img`` post-processing: a bilinear resize of the logits to
the image's full size (PyTorch's ``F.interpolate(..., mode="bilinear", align_corners=False)``, computed in
float32 in the same order) followed by the argmax over classes, or the sigmoid threshold for one class.
When the logits already have the image's size (``--scale 1``, the usual case) the resize is the identity
and is skipped.

:func:`mask_image` turns a class mask into the image written to disk: milesial's ``mask_to_image`` when
the checkpoint or manifest gives ``mask_values``; without them a model of more than two classes gets an
index PNG (pixel value = class) with a palette for viewing, so no class is lost, and a one- or two-class
model keeps milesial's default ``[0, 1]`` binary mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts.label_rules import sigmoid_above as _sigmoid_above, sigmoid_cut
from ..errors import InputError, OutputError

__all__ = ["PALETTE", "resize_bilinear", "logits_to_mask", "sigmoid_cut", "mask_image", "save_mask"]

#: Class colours of index masks and overlays (class 0 black); repeated beyond its length.
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]], dtype=np.uint8)


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` rounded once to float32, as the fused multiply-add of PyTorch's CPU kernels (the float32
    product is exact in float64)."""
    return (a.astype(np.float64) * b + c).astype(np.float32)


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a linear resize along one axis, as PyTorch computes them
    (``align_corners=False``, float32): ``(i0, i1, w0, w1)``."""
    scale = np.float32(n_in) / np.float32(n_out)
    dst = np.arange(n_out, dtype=np.float32) + np.float32(0.5)
    src = np.maximum(_fma(np.full(n_out, scale, np.float32), dst, np.float32(-0.5)), np.float32(0))
    i0 = src.astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0.astype(np.float32)
    w0 = np.float32(1) - w1
    return i0, i1, w0, w1


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize the last two axes of a float32 array to ``size = (H, W)`` bilinearly (``align_corners=False``).

    Matches ``torch.nn.functional.interpolate(mode="bilinear")`` bit for bit on CPUs with FMA (AVX2), where
    its kernel fuses each second tap into the first: ``fma(x0, w0, x1 * w1)`` along W, then along H.
    """
    x = np.asarray(x, dtype=np.float32)
    h_in, w_in = x.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if (h, w) == (h_in, w_in):
        return x
    r0, r1, hw0, hw1 = _taps(h_in, h)
    c0, c1, ww0, ww1 = _taps(w_in, w)

    def along_w(rows: np.ndarray) -> np.ndarray:
        return _fma(rows[..., c0], ww0, rows[..., c1] * ww1)

    top, bottom = along_w(x[..., r0, :]), along_w(x[..., r1, :])
    return _fma(top, hw0[:, None], bottom * hw1[:, None])


def logits_to_mask(logits: Any, full_size: tuple[int, int], mask_threshold: float = 0.5) -> np.ndarray:
    """Logits ``1xKxhxw`` or ``Kxhxw`` -> ``HxW`` int64 class mask (argmax; sigmoid > threshold for K == 1).

    Raises:
        InputError: Logits of another rank, or more than one image.
    """
    t = np.asarray(logits)
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise InputError(f"logits of shape {t.shape}", "1xKxhxw or Kxhxw", "post-process one image at a time")
        t = t[0]
    if t.ndim != 3:
        raise InputError(f"logits of shape {t.shape}", "1xKxhxw or Kxhxw", "post-process one image at a time")
    t = resize_bilinear(t.astype(np.float32, copy=False), full_size)
    if t.shape[0] > 1:
        return np.argmax(t, axis=0).astype(np.int64, copy=False)
    return _sigmoid_above(t[0], mask_threshold).astype(np.int64)


def mask_to_image(mask: np.ndarray, mask_values: Sequence[Any] | None = None) -> np.ndarray:
    """Class mask -> image array, exactly as milesial's ``predict.mask_to_image`` (before ``fromarray``).

    Args:
        mask: ``HxW`` class indices (or ``KxHxW`` scores: argmax over axis 0).
        mask_values: One value per class: ints -> ``HxW`` uint8; lists (e.g. RGB triples) ->
            ``HxWxlen`` uint8; exactly ``[0, 1]`` (also ``[False, True]``) -> ``HxW`` bool. ``None``
            means ``[0, 1]``, milesial's default for checkpoints without ``mask_values``.

    Returns:
        The array ``PIL.Image.fromarray`` would receive (see :func:`to_pil_image`).
    """
    values = [0, 1] if mask_values is None else list(mask_values)
    mask = np.asarray(mask)
    if isinstance(values[0], (list, tuple)):
        out = np.zeros((mask.shape[-2], mask.shape[-1], len(values[0])), dtype=np.uint8)
    elif values == [0, 1]:
        out = np.zeros((mask.shape[-2], mask.shape[-1]), dtype=bool)
    else:
        out = np.zeros((mask.shape[-2], mask.shape[-1]), dtype=np.uint8)
    if mask.ndim == 3:
        mask = np.argmax(mask, axis=0)
    for i, v in enumerate(values):
        out[mask == i] = v
    return out


def mask_image(mask: np.ndarray, mask_values: Sequence[Any] | None = None, classes: int | None = None):
    """The PIL image a mask is saved as.

    Args:
        mask: ``HxW`` class indices.
        mask_values: milesial's value per class (written exactly as its ``mask_to_image``), or ``None``.
        classes: The model's class count (its logits' channels). Without ``mask_values``, more than two
            classes give an index image (mode ``P``: value = class, palette for viewing); otherwise
            milesial's default binary ``[0, 1]`` mask.
    """
    from ..data.images import _pil

    image_mod = _pil()
    mask = np.asarray(mask)
    n = max(int(classes or 0), int(mask.max(initial=0)) + 1)
    if mask_values is None and n > 2:
        if n > 256:
            raise OutputError(f"{n} classes", "at most 256 classes in an index PNG", "pass mask_values or use .npy")
        h, w = mask.shape
        img = image_mod.frombytes("P", (w, h), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
        img.putpalette(np.resize(PALETTE, (256, 3)).ravel().tolist())
        return img
    return image_mod.fromarray(mask_to_image(mask, mask_values))


def save_mask(mask: np.ndarray, path: str | Path, mask_values: Sequence[Any] | None = None,
              classes: int | None = None) -> Path:
    """Write a mask atomically in the format its suffix names (PNG, TIFF, BMP; lossy formats refused).

    Raises:
        OutputError: A lossy/unknown suffix, a special file in the way, or an OS error (one line).
    """
    from ..fileio import atomic_path
    from .dataset import mask_format

    path = Path(path)
    fmt = mask_format(path)
    img = mask_image(mask, mask_values, classes)
    try:
        with atomic_path(path) as tmp:
            img.save(tmp, format=fmt)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "a writable output location",
                          "check permissions and free space, or choose another -o") from exc
    return path
