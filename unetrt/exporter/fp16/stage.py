"""The FP16 stage of the export chain: ``model_fp16.onnx``, converted, searched and verified.

Like the INT8 stage, a plain function :func:`unetrt.exporter.pipeline.export` calls explicitly, returning
its manifest section and raising :class:`unetrt.errors.UnetrtError` subclasses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from torch import nn

from ...artifacts import names
from ...artifacts.manifest import Fp16Section, Verification
from ...fileio import sha256_file
from ...parity import Tolerance
from ..onnx_io import INPUT_NAME
from ..verify import SweepSize, check, eager_all, verify

FP16_ONNX_NAME = names.ONNX_FP16
ORT_CPU_FP16_NOTE = ("ONNX Runtime's CPU provider runs FP16 graphs by upcasting to FP32, so this sweep sees "
                     "weight rounding only; the FP32-node search also measured activation rounding by emulation")


def calibration_feeds(sizes: Sequence[SweepSize], in_ch: int, calib: Sequence[np.ndarray] | None,
                      seed: int = 7, count: int = 3) -> list[np.ndarray]:
    """Calibration inputs: the user's (NCHW float32) or a few sizes of the verification sweep."""
    if calib:
        return [np.ascontiguousarray(a, dtype=np.float32) for a in calib]
    rng = np.random.default_rng(seed)
    picks = list(sizes[:1]) + list(sizes[2:2 + count - 1])
    return [rng.standard_normal((s.batch, in_ch, *s.spatial)).astype(np.float32) for s in picks]


def fp16_stage(model: nn.Module, onnx_path: Path, out_dir: Path, in_ch: int, sizes: Sequence[SweepSize], *,
               keep_io_types: bool, atol_factor: float, min_argmax: float, calib: Sequence[np.ndarray] | None,
               progress: Callable[[str], None]) -> Fp16Section:
    """Write ``model_fp16.onnx`` (accuracy-driven mixed precision) and verify it over the sweep."""
    from .convert import convert_fp16

    feeds = calibration_feeds(sizes, in_ch, calib)
    names = _output_names(onnx_path)
    refs = [dict(zip(names, eager_all(model, x))) for x in feeds]
    out_path = out_dir / FP16_ONNX_NAME
    result = convert_fp16(onnx_path, out_path, feeds=[{INPUT_NAME: x} for x in feeds], references=refs,
                          keep_io_types=keep_io_types, max_abs_tol=atol_factor, min_argmax_agreement=min_argmax,
                          progress=progress)
    progress("verifying FP16 parity (onnxruntime CPU vs eager fp32)")
    rows = verify(model, str(out_path), in_ch, sizes, tolerance=Tolerance(atol_factor, min_argmax),
                  input_dtype=np.float32 if keep_io_types else np.float16)
    check(rows, "FP16 ONNX (onnxruntime CPU) vs eager fp32")
    info = result.to_dict()
    info.update(path=FP16_ONNX_NAME, sha256=sha256_file(out_path),
                calibration={"source": "user images" if calib else "verification sizes, N(0,1) inputs",
                             "inputs": [list(x.shape) for x in feeds]},
                verification=Verification(backend="onnxruntime-cpu", reference="eager fp32", performed=True,
                                          tolerance={"max_abs": f"{atol_factor:g} * max(1, |ref|max)",
                                                     "argmax_agreement": min_argmax},
                                          passed=True, note=ORT_CPU_FP16_NOTE, sizes=rows))
    return Fp16Section(**info)



def _output_names(onnx_path: Path) -> list[str]:
    import onnx

    return [o.name for o in onnx.load(str(onnx_path), load_external_data=False).graph.output]
