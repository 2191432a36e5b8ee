"""ONNX Runtime's TensorRT EP has no TF32 switch: its FP32 rows are held to the TF32 bar, not the FP32 one."""

from __future__ import annotations

import numpy as np

from unetrt.bench.parity import parity_row, tolerance_for
from unetrt.parity import FP16_TOLERANCE, FP32_TOLERANCE, TF32_TOLERANCE
from unetrt.runtime.backends import get as get_backend


def test_ort_trt_rows_use_the_tf32_bar():
    backend = get_backend("ort-trt")
    assert backend.precision == "fp32" and backend.parity == "tf32"
    assert tolerance_for(backend.parity or backend.precision) is TF32_TOLERANCE
    assert any("no TF32 switch" in n for n in backend.notes)
    assert get_backend("ort-cuda").parity == "" and get_backend("trt").parity == ""  # TF32 turned off there
    assert FP32_TOLERANCE.atol_factor < TF32_TOLERANCE.atol_factor < FP16_TOLERANCE.atol_factor


def test_a_tf32_sized_error_passes_the_tf32_bar_and_fails_the_fp32_one():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(1, 3, 32, 32)).astype(np.float32) * 4
    ref[:, 0] += 3  # decisive classes
    tf32_like = ref * (1 + rng.uniform(-1e-3, 1e-3, size=ref.shape).astype(np.float32))
    assert parity_row(ref, tf32_like, "fp32")["parity_passed"] is False
    row = parity_row(ref, tf32_like, "tf32")
    assert row["parity_passed"] is True and row["atol"] > 0
    assert parity_row(ref, ref + 0.2, "tf32")["parity_passed"] is False
