"""Logits -> class labels on the device that holds them (torch tensors of the CUDA runners).

The same arithmetic as :mod:`unetrt.runtime.masks` in torch ops: the bilinear resize with its taps and
weights computed once on the host and each fused multiply-add done in float64 then rounded to float32,
the argmax over classes, and for one class the comparison with :func:`~unetrt.runtime.masks.sigmoid_cut`
instead of a sigmoid. The labels are therefore bit-identical to the numpy path on any device, and only
the ``uint8`` labels (``int32`` beyond 256 classes) need to cross back to the host.

Imported only when a runner returned a torch tensor: the CPU paths never import torch through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .masks import _taps, sigmoid_cut

__all__ = ["resize_bilinear_like_numpy", "device_labels", "labels_to_host"]


def _fma(a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` rounded once to float32 (exact float32 product in float64), as masks._fma."""
    return (a.double() * b.double() + c.double()).float()


def resize_bilinear_like_numpy(x: Any, size: tuple[int, int]) -> Any:
    """:func:`unetrt.runtime.masks.resize_bilinear` on a torch tensor, on its device, bit for bit."""
    import torch

    x = x.float()
    h_in, w_in = x.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if (h, w) == (int(h_in), int(w_in)):
        return x

    def on(a: np.ndarray) -> Any:
        return torch.from_numpy(a).to(x.device)

    r0, r1, hw0, hw1 = map(on, _taps(int(h_in), h))
    c0, c1, ww0, ww1 = map(on, _taps(int(w_in), w))

    def along_w(rows: Any) -> Any:
        return _fma(rows.index_select(-1, c0), ww0, rows.index_select(-1, c1) * ww1)

    top, bottom = along_w(x.index_select(-2, r0)), along_w(x.index_select(-2, r1))
    return _fma(top, hw0[:, None], bottom * hw1[:, None])


def device_labels(logits: Any, full_size: tuple[int, int], mask_threshold: float = 0.5) -> Any:
    """Logits tensor ``1xKxhxw`` or ``Kxhxw`` -> ``HxW`` labels on the same device (``uint8``; ``int32``
    for more than 256 classes), equal to :func:`~unetrt.runtime.masks.logits_to_mask`.

    Raises:
        InputError: Logits of another rank, or more than one image.
    """
    import torch

    t = logits
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3:
        raise InputError(f"logits of shape {tuple(logits.shape)}", "1xKxhxw or Kxhxw",
                         "post-process one image at a time")
    t = resize_bilinear_like_numpy(t, full_size)
    k = int(t.shape[0])
    if k > 1:
        return t.argmax(dim=0).to(torch.uint8 if k <= 256 else torch.int32)
    cut = sigmoid_cut(float(mask_threshold))
    if cut is None:
        return torch.zeros(t.shape[-2:], dtype=torch.uint8, device=t.device)
    return (t[0] >= cut).to(torch.uint8)


def labels_to_host(labels: Any) -> np.ndarray:
    """Device labels -> the ``HxW`` int64 mask of the numpy path (only the small labels are copied)."""
    return labels.cpu().numpy().astype(np.int64)
