"""How logits become class labels, as facts both the labels artifact and the runtime follow.

milesial thresholds a one-class model's ``sigmoid(logit) > threshold`` in float32. A labels graph
(``model_labels.onnx``) and a device compare the logit with :func:`sigmoid_cut` instead, which decides every
float32 logit exactly as :func:`sigmoid_above` does, without depending on how a runtime rounds ``exp``.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["sigmoid_above", "sigmoid_cut"]


def sigmoid_above(t: np.ndarray, threshold: float) -> np.ndarray:
    """``sigmoid(t) > threshold`` in float32, as milesial thresholds one-class logits."""
    with np.errstate(over="ignore"):
        prob = np.float32(1) / (np.float32(1) + np.exp(-t))
    return prob > np.float32(threshold)


def _from_key(key: int) -> np.float32:
    """The float32 at position ``key`` of the ordered float32 line (0 is zero, +-0x7F800000 the infinities)."""
    bits = key if key >= 0 else 0x80000000 | -key
    return np.array([bits], np.uint32).view(np.float32)[0]


@functools.lru_cache(maxsize=64)
def sigmoid_cut(threshold: float) -> float | None:
    """The smallest float32 logit the one-class threshold accepts, so that ``logit >= cut`` decides every
    pixel as :func:`unetrt.runtime.masks.logits_to_mask` does (NaN never passes; ``-inf``: every other logit passes).

    A labels graph or a device compares logits with this value instead of computing the sigmoid, so the
    masks do not depend on how a device rounds ``exp``. Found by bisection over the ordered float32 values
    with the same float32 formula (the sigmoid is monotone).

    Returns:
        The cut, or ``None`` when no logit passes (a threshold of 1 or more).
    """
    def passes(key: int) -> bool:
        return bool(sigmoid_above(np.full(64, _from_key(key), np.float32), threshold)[0])

    lo, hi = -0x7F800000, 0x7F800000
    if passes(lo):
        return float("-inf")
    if not passes(hi):
        return None
    while hi - lo > 1:  # invariant: lo fails, hi passes
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if passes(mid) else (mid, hi)
    return float(_from_key(hi))
