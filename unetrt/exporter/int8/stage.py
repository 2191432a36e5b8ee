"""The INT8 stages of the export chain: ``model_int8.onnx`` (+ ``model_int8_cpu.onnx``) and ``model_int8.engine``.

Like the FP16 stage, each is a plain function :func:`unetrt.exporter.pipeline.export` calls explicitly,
returning its manifest section and raising :class:`unetrt.errors.UnetrtError` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from torch import nn

from ...artifacts import names
from ...artifacts.manifest import EngineEntry, Int8Section
from ...errors import CalibrationError, ExportError
from ...fileio import sha256_file
from .calib import admissible, common_crop, fit_static, random_inputs
from .search import Int8Bars, measure
from ..config import Int8Options
from ..onnx_io import INPUT_NAME
from ..verify import SweepSize, eager_outputs

INT8_ONNX_NAME = names.ONNX_INT8
INT8_CPU_ONNX_NAME = names.ONNX_INT8_CPU
INT8_ENGINE_NAME = names.engine_name("int8")
RANDOM_CALIB_WARNING = ("INT8 calibrated on random uniform [0, 1) inputs (no --calib-images): random inputs "
                        "calibrate badly; pass --calib-images DIR with representative images")


@dataclass
class Int8Plan:
    """Validated INT8 options, as the INT8 stage takes them."""

    count: int = 16
    method: str = "minmax"
    bars: Int8Bars = Int8Bars()
    max_float: int | None = None
    cpu: bool = False
    quantizer: str = "auto"


def options(opts: Int8Options) -> Int8Plan:
    """The stage's plan for the :class:`~unetrt.exporter.config.Int8Options`, validated before any work.

    Raises:
        CalibrationError: ``calib_count < 1``.
        ExportError: An unknown calibration method, bars outside [0, 1], a negative float budget.
    """
    from .quantize import METHODS

    if opts.calib_count < 1:
        raise CalibrationError(f"--calib-count {opts.calib_count}", "at least 1 calibration input",
                               "pass --calib-count 1 or more (default 16)")
    if opts.calib_method not in METHODS:
        raise ExportError(f"unknown --calib-method {opts.calib_method!r}", f"one of {', '.join(METHODS)}",
                          "pick one of those")
    if opts.max_float is not None and opts.max_float < 0:
        raise ExportError(f"--int8-max-float {opts.max_float}", "0 or more nodes", "fix the limit")
    bars = Int8Bars(min_argmax_agreement=opts.min_argmax, min_mean_dice=opts.min_dice)
    return Int8Plan(count=opts.calib_count, method=opts.calib_method, bars=bars, max_float=opts.max_float,
                    cpu=opts.cpu)


def _feeds(files, sizes: Sequence[SweepSize], in_ch: int, alignment: int, min_size: int | None, count: int,
           one_shape: bool, static: Sequence[int] | None = None):
    """``(calibration arrays, evaluation arrays, evaluation labels, calibration description)``."""
    if count < 1:
        raise CalibrationError(f"calibration count {count}", "at least 1 input", "pass --calib-count 1 or more")
    if files and static is not None:  # a static graph takes one shape: crop (or pad) and batch the images
        calib, held = files[:count], files[count:2 * count]
        evals = fit_static([a for _, a in held or calib], static)
        info = {"source": "images", "files": [n for n, _ in calib], "held_out": [n for n, _ in held],
                "evaluated_on": ("held-out" if held else "the calibration") + " images, fitted to the static shape"}
        labels = [f"batch {k}" for k in range(len(evals))]
        return fit_static([a for _, a in calib], static), evals, labels, info
    if files:
        calib, held = files[:count], files[count:2 * count]
        arrays = [a for _, a in calib]
        arrays = common_crop(arrays, alignment, min_size) if one_shape else admissible(arrays, alignment, min_size)
        evals = held or calib
        info = {"source": "images", "files": [n for n, _ in calib], "held_out": [n for n, _ in held],
                "evaluated_on": "held-out images" if held else "the calibration images (no held-out image: the "
                                                               "folder has no more files than --calib-count)"}
        return arrays, admissible([a for _, a in evals], alignment, min_size), [n for n, _ in evals], info
    picks = [sizes[i % len(sizes)] for i in range(2, 2 + count)] if len(sizes) > 2 else \
        [sizes[i % len(sizes)] for i in range(count)]
    shapes = [(s.batch, in_ch, *s.spatial) for s in (picks if not one_shape else [sizes[0]] * count)]
    evals = [(s.batch, in_ch, *s.spatial) for s in sizes[:2]]
    info = {"source": "random uniform [0, 1) at verification sizes", "warning": RANDOM_CALIB_WARNING,
            "evaluated_on": "random uniform [0, 1) inputs at other verification sizes"}
    return random_inputs(shapes, seed=11), random_inputs(evals, seed=12), ["x".join(map(str, s)) for s in evals], info


def int8_stage(model: nn.Module, onnx_path: Path, out_dir: Path, in_ch: int, sizes: Sequence[SweepSize], *,
               alignment: int, min_size: int | None, calib_files: list[tuple[str, np.ndarray]] | None,
               options: Int8Plan, progress: Callable[[str], None],
               static: Sequence[int] | None = None) -> Int8Section:
    """Write ``model_int8.onnx`` (and ``model_int8_cpu.onnx``), check it, and return the manifest section."""
    from .quantize import needs_one_shape, quantize_int8

    one_shape = needs_one_shape(options.method, options.quantizer)
    calib, evals, labels, info = _feeds(calib_files, sizes, in_ch, alignment, min_size, options.count, one_shape,
                                        static)
    if "warning" in info:
        progress("warning: " + RANDOM_CALIB_WARNING)
    refs = [eager_outputs(model, x) for x in evals]
    out_path = out_dir / INT8_ONNX_NAME
    cpu_path = out_dir / INT8_CPU_ONNX_NAME if options.cpu else None
    result = quantize_int8(onnx_path, out_path, calibration=calib, eval_feeds=evals, references=refs, labels=labels,
                           method=options.method, bars=options.bars, max_float=options.max_float, cpu_path=cpu_path,
                           quantizer=options.quantizer, input_name=INPUT_NAME, progress=progress)
    progress("checking INT8 ONNX over the verification sizes (onnxruntime CPU vs eager fp32)")
    info.update(method=options.method, inputs=[list(x.shape) for x in calib])
    section = result.to_dict()
    section.update(path=INT8_ONNX_NAME, sha256=sha256_file(out_path), runtime="tensorrt, onnxruntime",
                   calibration=info, bars=options.bars.to_dict(),
                   sweep={"backend": "onnxruntime-cpu", "reference": "eager fp32", "inputs": "uniform [0, 1)",
                          "note": "runs at every verification size; the bars apply to the evaluation inputs",
                          "sizes": sweep(model, out_path, in_ch, sizes, options.bars)})
    if result.cpu:
        section["cpu"].update(path=INT8_CPU_ONNX_NAME, sha256=sha256_file(cpu_path), runtime="onnxruntime-cpu")
    return Int8Section(**section)


def sweep(model: nn.Module, path: Path, in_ch: int, sizes: Sequence[SweepSize], bars: Int8Bars) -> list[dict]:
    """Run the INT8 graph at every verification size and measure it against eager FP32 (rows like ``verify``)."""
    from ...artifacts.ort import make_session
    from ...errors import ParityError

    session = make_session(path)
    rows = []
    for k, s in enumerate(sizes):
        x = random_inputs([(s.batch, in_ch, *s.spatial)], seed=100 + k)[0]
        out = session.run(None, {INPUT_NAME: x})[0]
        ref = eager_outputs(model, x)
        m = measure(ref, out, bars)
        rows.append({"input_shape": list(x.shape), "output_shape": list(out.shape), "max_abs": m["max_abs"],
                     "mean_abs": m["mean_abs"], "rel_to_range": m["max_abs"] / max(float(np.ptp(ref)), 1e-12),
                     "argmax_agreement": m["argmax_agreement"], "mean_dice": m["mean_dice"],
                     "passed": out.shape == ref.shape and bool(np.all(np.isfinite(out)))})
        if not rows[-1]["passed"]:
            raise ParityError(f"the INT8 ONNX gives shape {out.shape} (or non-finite values) at input "
                              f"{'x'.join(map(str, x.shape))}", f"shape {ref.shape} like eager", "report the model")
    return rows


def int8_engine_stage(onnx_int8: Path, out_dir: Path, mode: tuple[str, str, bool], opts, profiles: list[dict],
                      fp16: bool, progress: Callable[[str], None]) -> EngineEntry:
    """Build ``model_int8.engine`` from the Q/DQ ONNX and return its manifest entry.

    Strongly typed builds (TensorRT >= 10.12, 11, RTX) run the quantized layers in INT8 and the rest in
    the ONNX's own types (FP32); weakly typed ones set ``BuilderFlag.INT8`` and, with ``fp16``, ``FP16``.
    """
    from ..trt_builder import build_engine

    flavour, version, strongly_typed = mode

    def on_progress(phase: str, step: int, total: int):
        progress(f"building int8 engine ({flavour} {version}): {phase} {step}/{total}")
        return True

    info = build_engine(onnx_int8, out_dir / INT8_ENGINE_NAME, profiles=profiles, precision="int8", flavour=flavour,
                        workspace_bytes=opts.workspace_bytes, optimization_level=opts.optimization_level,
                        timing_cache=opts.timing_cache, compute_capabilities=opts.compute_capabilities,
                        version_compatible=opts.version_compatible, fp16_fallback=fp16 and not strongly_typed,
                        progress=on_progress, **opts.portability()).to_dict()
    if strongly_typed:
        how = "strongly typed: Q/DQ layers INT8, the other layers in the ONNX's types (FP32)"
        if fp16:
            how += f"; no FP16 fallback on {flavour} {version} (precision comes from the ONNX)"
    else:
        how = "BuilderFlag.INT8 on the Q/DQ ONNX" + (" + BuilderFlag.FP16 for non-quantized layers" if fp16 else "")
    from ..steps import _jsonable

    info.update(path=INT8_ENGINE_NAME, onnx=onnx_int8.name, int8_mode=how)
    info["options"] = _jsonable(info.get("options") or {})
    return EngineEntry(**info)
