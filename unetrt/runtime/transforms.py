"""Image pre/post-processing compatible with milesial/Pytorch-UNet, and alignment padding.

``preprocess`` reproduces ``BasicDataset.preprocess`` (bicubic resize by ``scale``, HWC -> CHW,
``/ 255`` when any value exceeds 1) and ``postprocess`` + ``mask_to_image`` reproduce
``predict.py`` (bilinear resize of the logits to the full size, argmax or sigmoid threshold,
mask values). Resizing with ``scale != 1`` uses Pillow (imported lazily, as milesial does).

Reading images (:func:`load_image`, :func:`image_to_array`, :func:`preprocess`, channel conversion)
lives in :mod:`unetrt.data.images`, shared with calibration and the bench, and is re-exported here.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from ..data.images import _pil, convert_channels, image_to_array, load_image, preprocess, resize  # re-exported
from ..errors import InputError
from .masks import logits_to_mask, mask_to_image  # noqa: F401  (mask_to_image re-exported)

__all__ = ["load_image", "image_to_array", "preprocess", "convert_channels", "resize", "align_pad", "crop", "CropBox", "postprocess",
           "mask_to_image", "to_pil_image"]

def round_up(x: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``x`` (kept here so the runtime imports no model code)."""
    return -(-x // multiple) * multiple


_PAD_MODES = {"replicate": "edge", "reflect": "reflect", "constant": "constant"}


class CropBox(NamedTuple):
    """Where the original content sits in a padded array (last two axes)."""

    top: int
    left: int
    height: int
    width: int


def align_pad(x: Any, alignment: int, mode: str = "replicate", *, min_size: int = 1,
              value: float = 0.0) -> tuple[np.ndarray, CropBox]:
    """Pad the last two axes at the bottom and right up to multiples of ``alignment`` (and ``min_size``).

    Bottom/right padding keeps the content at the origin, so the pooling grid stays where an
    unpadded run would put it.

    Args:
        x: Array with H, W as its last two axes (e.g. ``1xCxHxW``).
        alignment: H and W multiple (1 = only ``min_size`` applies).
        mode: ``"replicate"`` (edge), ``"reflect"`` or ``"constant"`` (``value``).
        min_size: Smallest padded H and W.
        value: Fill value for ``mode="constant"``.

    Returns:
        ``(padded, crop_box)``; ``crop(model_output, crop_box)`` undoes it.
    """
    if mode not in _PAD_MODES:
        raise InputError(f"unknown pad mode {mode!r}", f"one of {', '.join(_PAD_MODES)}", "fix mode")
    if int(alignment) < 1 or int(min_size) < 1:
        raise InputError(f"alignment={alignment}, min_size={min_size}", "positive integers", "fix the arguments")
    x = np.asarray(x)
    if x.ndim < 2:
        raise InputError(f"array of shape {x.shape}", "H and W as the last two axes", "pass e.g. a 1xCxHxW array")
    h, w = x.shape[-2:]
    targets = [max(round_up(max(s, min_size), alignment), 1) for s in (h, w)]
    pad = [(0, 0)] * (x.ndim - 2) + [(0, targets[0] - h), (0, targets[1] - w)]
    if targets != [h, w]:
        kwargs = {"constant_values": value} if mode == "constant" else {}
        if mode == "reflect" and min(h, w) < 2:
            mode = "replicate"  # nothing to reflect in a 1-pixel axis
        x = np.pad(x, pad, mode=_PAD_MODES[mode], **kwargs)
    return x, CropBox(0, 0, h, w)


def crop(y: Any, box: CropBox) -> Any:
    """Cut the original region out of a same-geometry output (last two axes)."""
    top, left, height, width = box
    return y[..., top:top + height, left:left + width]


def postprocess(logits: Any, full_size: tuple[int, int], mask_threshold: float = 0.5) -> np.ndarray:
    """Logits ``1xKxhxw`` (or ``Kxhxw``) -> ``HxW`` int64 class mask, like milesial's ``predict_img``.

    The logits are resized to ``full_size = (H, W)`` bilinearly (``align_corners=False``); K > 1
    takes the argmax, K == 1 thresholds the sigmoid at ``mask_threshold``. Computed in numpy (see
    :func:`unetrt.runtime.masks.logits_to_mask`); torch tensors are accepted and moved to the host.
    """
    if hasattr(logits, "detach"):
        logits = logits.detach().cpu().numpy()
    return logits_to_mask(logits, full_size, mask_threshold)


def to_pil_image(array: np.ndarray):
    """``PIL.Image.fromarray`` (Pillow imported lazily)."""
    return _pil().fromarray(np.asarray(array))
