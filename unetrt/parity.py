"""Numeric parity between a reference output and a test output (data, not prints).

:func:`compare` is the one comparison of the project: the exporter's verification sweep
(:mod:`unetrt.exporter.verify`), the FP16 search (:mod:`unetrt.exporter.fp16.search`), the
benchmark's parity columns (:mod:`unetrt.bench.parity`) and the runner contract tests all call it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """Pass/fail bars.

    ``max_abs <= atol_factor * max(1, |ref|max)`` and, when set, argmax agreement over the
    class axis ``>= min_argmax_agreement``.
    """

    atol_factor: float = 1e-4
    min_argmax_agreement: float | None = None

    def atol(self, ref: np.ndarray) -> float:
        return float(self.atol_factor * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0))


FP32_TOLERANCE = Tolerance(atol_factor=1e-4)
FP16_TOLERANCE = Tolerance(atol_factor=1e-2, min_argmax_agreement=0.995)
#: FP32 graphs TensorRT runs with TF32 (10-bit mantissa in convolutions and matmuls, Ampere and later):
#: ONNX Runtime's TensorRT EP cannot turn TF32 off, so the FP32 bar (1e-4) would fail by construction.
TF32_TOLERANCE = Tolerance(atol_factor=5e-3, min_argmax_agreement=0.998)
#: INT8 bars: mask agreement over every pixel and mean Dice of the masks (max abs error is reported,
#: not barred: quantization moves logits by far more than any FP32/FP16 bar).
INT8_MIN_ARGMAX = 0.99
INT8_MIN_DICE = 0.98


@dataclass(frozen=True)
class OutputParity:
    """How far ``test`` is from ``ref`` for one output tensor."""

    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    p99_abs: float
    max_rel: float
    rel_to_range: float
    argmax_agreement: float
    argmax_agreement_all: float
    decisive_fraction: float
    mean_iou: float
    dice: float
    atol: float
    passed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d


def _decisive(ref: np.ndarray, atol: float) -> np.ndarray:
    """Pixels whose reference class is decided by more than the error budget.

    With every logit allowed to move by ``atol``, a pixel whose top-2 margin is at most ``2*atol``
    (or, for one class, whose logit is within ``atol`` of the 0.5 sigmoid threshold) may flip
    class without any logit leaving the tolerance: such ties say nothing about the backend.
    """
    if ref.ndim >= 3 and ref.shape[1] > 1:
        top2 = np.partition(ref, -2, axis=1)
        return (top2[:, -1] - top2[:, -2]) > 2 * atol
    if ref.ndim >= 3:
        return (np.abs(ref) > atol).reshape(ref.shape[0], *ref.shape[2:])
    return np.abs(ref) > atol


def _masks(x: np.ndarray) -> np.ndarray:
    """Class masks: argmax over channels, or a 0.5-threshold of the sigmoid for one class."""
    if x.ndim >= 3 and x.shape[1] > 1:
        return np.argmax(x, axis=1)
    return (x > 0).astype(np.int64).reshape(x.shape[0], *x.shape[2:]) if x.ndim >= 3 else (x > 0)


def class_masks(x: np.ndarray) -> np.ndarray:
    """Class masks of NCHW logits: argmax over channels, or the 0-logit threshold for one class."""
    return _masks(np.asarray(x))


def class_scores(ref_mask: np.ndarray, test_mask: np.ndarray, num_classes: int) -> dict[int, tuple[float, float]]:
    """``{class: (IoU, Dice)}`` for every class present in either mask."""
    out = {}
    for c in range(max(num_classes, 2)):
        a, b = ref_mask == c, test_mask == c
        union = int(np.logical_or(a, b).sum())
        if union:
            inter = int(np.logical_and(a, b).sum())
            out[c] = (inter / union, 2 * inter / (int(a.sum()) + int(b.sum())))
    return out


def mask_scores(ref_mask: np.ndarray, test_mask: np.ndarray, num_classes: int) -> tuple[float, float]:
    """Mean IoU and mean Dice over the classes present in either mask (1.0 when both are empty)."""
    ious, dices = [], []
    for c in range(max(num_classes, 2)):
        a, b = ref_mask == c, test_mask == c
        union = np.logical_or(a, b).sum()
        if union == 0:
            continue
        inter = np.logical_and(a, b).sum()
        ious.append(inter / union)
        dices.append(2 * inter / (a.sum() + b.sum()))
    if not ious:
        return 1.0, 1.0
    return float(np.mean(ious)), float(np.mean(dices))


def _failed(shape: tuple[int, ...], atol: float, reason: str) -> OutputParity:
    """A failed comparison without statistics (NaN errors, zero agreement)."""
    nan = float("nan")
    return OutputParity(tuple(shape), nan, nan, nan, nan, nan, 0.0, 0.0, 0.0, 0.0, 0.0, atol, False, reason)


def compare(ref: np.ndarray, test: np.ndarray, tolerance: Tolerance = FP32_TOLERANCE) -> OutputParity:
    """Compare two outputs of the same shape (NCHW logits for segmentation).

    ``argmax_agreement`` counts the pixels whose reference class is decisive (top-2 margin above
    ``2*atol``, see :func:`_decisive`); ``argmax_agreement_all`` counts every pixel. A shape
    mismatch is a failure, not an exception, so sweeps can report it in their table.
    """
    ref = np.asarray(ref, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    atol = tolerance.atol(ref)
    if ref.shape != test.shape:
        return _failed(test.shape, atol, f"shape {tuple(test.shape)} != reference {tuple(ref.shape)}")
    if not np.all(np.isfinite(test)):
        return _failed(ref.shape, atol, "non-finite values in output")
    diff = np.abs(ref - test)
    max_abs = float(diff.max()) if diff.size else 0.0
    value_range = float(ref.max() - ref.min()) if ref.size else 0.0
    rel = diff / np.maximum(np.abs(ref), 1e-6)
    ref_mask, test_mask = _masks(ref), _masks(test)
    same = ref_mask == test_mask
    decisive = _decisive(ref, atol)
    agreement_all = float(np.mean(same)) if same.size else 1.0
    agreement = float(np.mean(same[decisive])) if decisive.any() else 1.0
    classes = ref.shape[1] if ref.ndim >= 3 else 2
    iou, dice = mask_scores(ref_mask, test_mask, classes)
    reasons = []
    if max_abs > atol:
        reasons.append(f"max abs {max_abs:.3g} > {atol:.3g}")
    if tolerance.min_argmax_agreement is not None and agreement < tolerance.min_argmax_agreement:
        reasons.append(f"argmax agreement {agreement:.4%} < {tolerance.min_argmax_agreement:.2%}")
    return OutputParity(
        shape=tuple(ref.shape),
        max_abs=max_abs,
        mean_abs=float(diff.mean()) if diff.size else 0.0,
        p99_abs=float(np.percentile(diff, 99)) if diff.size else 0.0,
        max_rel=float(rel.max()) if rel.size else 0.0,
        rel_to_range=max_abs / value_range if value_range > 0 else 0.0,
        argmax_agreement=agreement,
        argmax_agreement_all=agreement_all,
        decisive_fraction=float(np.mean(decisive)) if decisive.size else 0.0,
        mean_iou=iou,
        dice=dice,
        atol=atol,
        passed=not reasons,
        reason="; ".join(reasons),
    )
