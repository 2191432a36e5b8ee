"""Parity of a backend's output with eager FP32, as benchmark-row fields.

The comparison itself is :func:`unetrt.parity.compare` (shared with the exporter); this module
picks the tolerance by precision and names the fields the reports carry.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..parity import (FP16_TOLERANCE, FP32_TOLERANCE, INT8_MIN_ARGMAX, INT8_MIN_DICE, TF32_TOLERANCE, OutputParity,
                      Tolerance, compare)

__all__ = ["TOLERANCES", "PARITY_FIELDS", "parity_row", "tolerance_for"]

#: Pass/fail bars by the backend's precision.
TOLERANCES: dict[str, Tolerance] = {"fp32": FP32_TOLERANCE, "fp16": FP16_TOLERANCE, "tf32": TF32_TOLERANCE,
                                    "int8": Tolerance(atol_factor=1e-2, min_argmax_agreement=INT8_MIN_ARGMAX)}

#: Row field -> ``OutputParity`` attribute.
PARITY_FIELDS = {"max_abs_err": "max_abs", "mean_abs_err": "mean_abs", "p99_abs_err": "p99_abs",
                 "max_rel_err": "max_rel", "rel_to_range": "rel_to_range", "argmax_agreement": "argmax_agreement",
                 "mean_iou": "mean_iou", "dice": "dice", "atol": "atol"}


def tolerance_for(precision: str) -> Tolerance:
    """The tolerance of a precision (``"fp32"``, ``"fp16"``) or of ``"tf32"`` (FP32 run with TF32 by TensorRT)."""
    return TOLERANCES[precision]


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def parity_row(reference: np.ndarray, output: Any, precision: str) -> dict[str, Any]:
    """Compare ``output`` with the eager FP32 ``reference``; return the row's parity fields.

    Non-finite statistics (a shape mismatch, NaN outputs) become ``None`` and the row fails.
    """
    tolerance = tolerance_for(precision)
    result: OutputParity = compare(reference, np.asarray(output, dtype=np.float32), tolerance)
    row = {field: _finite(getattr(result, attr)) for field, attr in PARITY_FIELDS.items()}
    if precision == "int8":  # INT8 bars: agreement over every pixel and mean Dice; max abs only reported
        row["argmax_agreement"] = _finite(result.argmax_agreement_all)
        reasons = [f"argmax agreement {result.argmax_agreement_all:.4f} < {INT8_MIN_ARGMAX:g}"
                   if not result.argmax_agreement_all >= INT8_MIN_ARGMAX else "",
                   f"mean Dice {result.dice:.4f} < {INT8_MIN_DICE:g}" if not result.dice >= INT8_MIN_DICE else "",
                   result.reason if result.max_abs != result.max_abs else ""]
        reason = "; ".join(r for r in reasons if r)
        row.update(parity_passed=not reason, parity_reason=reason or None, min_argmax_agreement=INT8_MIN_ARGMAX,
                   output_shape=list(result.shape), atol=None)
        return row
    row.update(parity_passed=bool(result.passed), parity_reason=result.reason or None,
               min_argmax_agreement=tolerance.min_argmax_agreement, output_shape=list(result.shape))
    return row
