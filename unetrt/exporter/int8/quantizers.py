"""The quantizers behind :func:`unetrt.exporter.int8.quantize_int8` (private): ONNX Runtime's
``quantize_static`` (QDQ) and NVIDIA ModelOpt's ONNX PTQ, each as
``quantize(source, calibration, method, excluded, symmetric, tmp, input_name) -> ModelProto``.

ONNX Runtime's calibration ranges are computed once per (method, form) and cached in ``tmp``, so the
accuracy search re-quantizes without re-running the calibration.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import re

import numpy as np
import onnx

from ...errors import ExportError, MissingDependencyError, QuantizationError


def _pick_quantizer(which: str, method: str):
    """``(quantize(source, calib, method, excluded, symmetric, tmp, input_name), description)``."""
    if which not in ("auto", "onnxruntime", "modelopt"):
        raise ExportError(f"unknown INT8 quantizer {which!r}", "'auto', 'onnxruntime' or 'modelopt'", "pick one")
    if which in ("auto", "modelopt"):
        try:
            import modelopt
            from modelopt.onnx.quantization import quantize as _mo  # noqa: F401
        except ImportError:
            if which == "modelopt":
                raise MissingDependencyError("NVIDIA ModelOpt is not installed", "modelopt.onnx.quantization",
                                             "pip install 'unetrt[modelopt]'") from None
        else:
            if method != "percentile":
                return _modelopt_quantize, f"modelopt {modelopt.__version__} (onnx.quantization, int8)"
            if which == "modelopt":
                raise ExportError("ModelOpt has no percentile calibration", "--calib-method minmax or entropy",
                                  "pick one of those, or the onnxruntime quantizer")
    from ...artifacts.ort import import_onnxruntime

    onnxruntime = import_onnxruntime()
    return _ort_quantize, f"onnxruntime {onnxruntime.__version__} (quantize_static, QDQ)"


class _Reader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over arrays (one feed per array)."""

    def __init__(self, arrays, input_name):
        self._feeds = iter([{input_name: np.asarray(a, np.float32)} for a in arrays])

    def get_next(self):
        return next(self._feeds, None)


@contextlib.contextmanager
def _quiet_ort():
    """Drop onnxruntime.quantization's "consider pre-processing" advice from the root logger and its
    progress prints (stdout stays clean for ``--json``)."""
    class _Drop(logging.Filter):
        def filter(self, record):
            return "pre-process" not in str(record.msg)

    root, drop = logging.getLogger(), _Drop()
    root.addFilter(drop)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeFilter(drop)


def _ort_quantize(source, calibration, method, excluded, symmetric, tmp, input_name) -> onnx.ModelProto:
    """``quantize_static`` in QDQ format; ranges are calibrated once per (method, form) and cached."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    cal = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile}[method]
    options = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False} if symmetric else {}
    kw = {}
    cache = os.path.join(tmp, f"ranges-{method}-{'sym' if symmetric else 'asym'}.json")
    if "calibration_cache_path" in inspect.signature(quantize_static).parameters:
        kw["calibration_cache_path"] = cache
    src = os.path.join(tmp, "source.onnx")
    if not os.path.isfile(src):
        onnx.save(source, src)
    out = os.path.join(tmp, "quantized.onnx")
    reader = None if os.path.isfile(cache) and kw else _Reader(calibration, input_name)
    try:
        with _quiet_ort():
            quantize_static(src, out, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=cal, nodes_to_exclude=list(excluded),
                            extra_options=options, **kw)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise QuantizationError(f"onnxruntime quantize_static failed: {' '.join(str(exc).split())[:300]}",
                                "calibration inputs the FP32 graph runs on", "check the calibration inputs") from exc
    return onnx.load(out)


def _modelopt_quantize(source, calibration, method, excluded, symmetric, tmp, input_name) -> onnx.ModelProto:
    """ModelOpt ONNX PTQ (int8, float parts kept FP32); the uint8 CPU form always uses ONNX Runtime."""
    if not symmetric:
        return _ort_quantize(source, calibration, method, excluded, symmetric, tmp, input_name)
    from modelopt.onnx.quantization import quantize as mo_quantize

    shapes = {tuple(np.shape(a)[1:]) for a in calibration}
    if len(shapes) != 1:
        raise ExportError("ModelOpt needs calibration inputs of one shape", "one C x H x W for all inputs",
                          "the exporter crops them to one size; report this")
    src, out = os.path.join(tmp, "source_mo.onnx"), os.path.join(tmp, "quantized_mo.onnx")
    onnx.save(source, src)
    mo_quantize(onnx_path=src, quantize_mode="int8", calibration_method="max" if method == "minmax" else "entropy",
                calibration_data={input_name: np.concatenate([np.asarray(a, np.float32) for a in calibration])},
                calibration_eps=["cpu"], nodes_to_exclude=[f"^{re.escape(n)}$" for n in excluded] or None,
                output_path=out, high_precision_dtype="fp32")
    return onnx.load(out)
