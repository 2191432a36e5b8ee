"""INT8 ONNX: explicit Q/DQ quantization that TensorRT (10, 11, RTX) parses and ONNX Runtime runs.

Quantization itself is done by a maintained library: ``onnxruntime.quantization.quantize_static``
(QDQ format) or, when it is installed, NVIDIA ModelOpt's ONNX PTQ (``modelopt.onnx.quantization``).
The TensorRT form (``model_int8.onnx``) is symmetric int8 everywhere: int8 activations with zero
points 0 (``ActivationSymmetric``), per-channel symmetric int8 weights (``WeightSymmetric``), float
biases (``QuantizeBias=False``: TensorRT's parser refuses int32 DequantizeLinear inputs and non-zero
zero points). The optional ONNX Runtime CPU form (``model_int8_cpu.onnx``) is uint8 asymmetric
activations with int32 biases, which ONNX Runtime's x86 kernels run fastest; TensorRT cannot parse it.

Around the quantizer this module adds: calibration ranges computed once and reused by the accuracy
search (:mod:`unetrt.exporter.int8.search`), the Q/DQ structure check (:mod:`unetrt.exporter.int8.qdq`),
atomic self-contained writes and ``metadata_props`` (``precision=int8``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from ...errors import ExportError, ParityError, QuantizationError
from . import search
from .qdq import _int8_weights, check_qdq
from .quantizers import _ort_quantize, _pick_quantizer
from .search import Int8Bars
from ...fileio import atomic_write_bytes

__all__ = ["Int8Result", "Int8Bars", "quantize_int8", "check_qdq", "needs_one_shape", "METHODS", "TRT_FORM",
           "CPU_FORM"]

METHODS = ("minmax", "entropy", "percentile")
TRT_FORM = "int8 symmetric activations (zero point 0), per-channel symmetric int8 weights, float biases"
CPU_FORM = "uint8 asymmetric activations, per-channel int8 weights, int32 biases"
Progress = Callable[[str], None]


@dataclass
class Int8Result:
    """What :func:`quantize_int8` wrote and how well it matches eager FP32.

    Attributes:
        path: The TensorRT-form INT8 ONNX.
        quantizer: Library and version, e.g. ``"onnxruntime 1.32.0 (quantize_static, QDQ)"``.
        method: Calibration method (``minmax``, ``entropy``, ``percentile``).
        form: What is quantized and how (:data:`TRT_FORM`).
        quantized_nodes: Number of compute nodes that take INT8 inputs.
        kept_float: Nodes left in float, each ``{"node", "op", "reason"}`` (measured reason).
        evaluation: Per evaluation input: argmax agreement, per-class Dice/IoU, max/mean abs, passed.
        structure: The :func:`check_qdq` summary.
        cpu: The ONNX Runtime CPU form (``path``, ``form``, ``evaluation``, ``structure``) or ``None``.
    """

    path: str
    quantizer: str
    method: str
    form: str
    quantized_nodes: int
    kept_float: list[dict]
    evaluation: list[dict]
    structure: dict
    cpu: dict | None = None

    def to_dict(self) -> dict:
        """Return a JSON-serialisable copy."""
        return asdict(self)


def quantize_int8(onnx_path: str | os.PathLike, out_path: str | os.PathLike, *, calibration: Sequence[np.ndarray],
                  eval_feeds: Sequence[np.ndarray], references: Sequence[np.ndarray], labels: Sequence[str],
                  method: str = "minmax", bars: Int8Bars | None = None, max_float: int | None = None,
                  exclude: Sequence[str] = (), cpu_path: str | os.PathLike | None = None,
                  quantizer: str = "auto", input_name: str = "input", progress: Progress | None = None) -> Int8Result:
    """Quantize an FP32 ONNX model to TensorRT-compatible Q/DQ INT8, keeping float the nodes that need it.

    Args:
        onnx_path: The FP32 ONNX (dynamic axes are kept).
        out_path: Where to write the INT8 ONNX (atomically, one file).
        calibration: Calibration inputs (NCHW float32, admissible sizes; one shared shape for the
            histogram methods and ModelOpt).
        eval_feeds: Inputs the accuracy is measured on; ``references``: eager FP32 outputs of them;
            ``labels``: their names in reports.
        method: ``"minmax"``, ``"entropy"`` or ``"percentile"``.
        bars: Accuracy bars (default :class:`Int8Bars`).
        max_float: Most nodes the search may keep in float (``None``: no limit); more is an accuracy
            failure.
        exclude: Node names kept float by request.
        cpu_path: Also write the ONNX Runtime CPU form there (same float nodes; must meet the bars).
        quantizer: ``"auto"`` (ModelOpt when importable and the method allows, else ONNX Runtime),
            ``"onnxruntime"`` or ``"modelopt"``.
        input_name: The graph input fed with the arrays.
        progress: Called with one-line status messages.

    Raises:
        QuantizationError: No quantizable layer, or a graph not in the TensorRT Q/DQ form.
        ParityError: The bars cannot be met within ``max_float`` (message and table name the nodes).
        ExportError, MissingDependencyError: Bad arguments, or the requested quantizer is missing.
    """
    say = progress or (lambda _msg: None)
    bars = bars or Int8Bars()
    if method not in METHODS:
        raise ExportError(f"unknown calibration method {method!r}", f"one of {', '.join(METHODS)}", "pick one")
    if not calibration or not eval_feeds or len(eval_feeds) != len(references) or len(labels) != len(eval_feeds):
        raise ExportError(f"{len(calibration)} calibration input(s), {len(eval_feeds)} evaluation feed(s), "
                          f"{len(references)} reference(s)", "at least one of each, one reference per feed",
                          "pass calibration images")
    if needs_one_shape(method, quantizer) and len({np.shape(x) for x in calibration}) > 1:
        raise ExportError(f"{method} calibration got inputs of shapes {sorted({np.shape(x) for x in calibration})}",
                          "calibration inputs of one shape (histogram calibrators and ModelOpt stack them)",
                          "crop them with unetrt.exporter.calib.common_crop, or use method='minmax'")
    source = onnx.load(os.fspath(onnx_path))
    if len(source.graph.output) != 1:
        raise ExportError(f"{os.fspath(onnx_path)} has {len(source.graph.output)} outputs",
                          "one output (the logits), whose references are given", "export a single-output model")
    _name_nodes(source)
    quantize, name = _pick_quantizer(quantizer, method)
    feeds = [{input_name: np.asarray(x, np.float32)} for x in eval_feeds]
    refs = [{o.name: r for o in source.graph.output} for r in references]
    with tempfile.TemporaryDirectory(prefix="unetrt-int8-") as tmp:
        def trt_form(excluded: frozenset) -> onnx.ModelProto:
            return quantize(source, calibration, method, sorted(set(excluded) | set(exclude)), True, tmp, input_name)

        state = search.Search(trt_form, feeds, refs, list(labels), bars, say)
        say(f"int8: calibrating ({method}, {len(calibration)} input(s), {name})")
        default = trt_form(frozenset())
        candidates = search.quantized_nodes(default)
        if not candidates or not _int8_weights(default):
            raise QuantizationError(f"{os.fspath(onnx_path)} has no layer the quantizer can take to INT8",
                                    "a model with Conv / ConvTranspose / MatMul layers",
                                    "deploy FP32 or FP16 instead of --int8")
        kept, failures, first = state.run(candidates, default)
        model = state.default if not kept else trt_form(kept)
        _check_float_budget(kept, first, max_float, len(candidates), _int8_weights(model))
        final = state.evaluate(kept, model)
        structure = check_qdq(model, source)
        for key, value in [("precision", "int8"), ("int8_form", "tensorrt"), ("int8_quantizer", name)]:
            _set_metadata(model, key, value)
        cpu = None
        if cpu_path is not None:  # checked (and written) first: a failing CPU form leaves no file behind
            cpu = _cpu_form(source, calibration, method, sorted(kept | set(exclude)), tmp, input_name, cpu_path,
                            feeds, refs, labels, bars, name, say)
        atomic_write_bytes(out_path, model.SerializeToString())
    say(f"int8: wrote {os.fspath(out_path)} ({len(candidates) - len(kept)} of {len(candidates)} nodes INT8)")
    by_name = {n.name: n.op_type for n in source.graph.node}
    kept_float = [{"node": n, "op": by_name.get(n, "?"), "reason": _reason(n, failures, final)} for n in
                  [c for c in candidates if c in kept]]
    kept_float += [{"node": n, "op": by_name.get(n, "?"), "reason": "requested (exclude)"} for n in exclude]
    return Int8Result(path=os.fspath(out_path), quantizer=name, method=method, form=TRT_FORM,
                      quantized_nodes=len(candidates) - len(kept), kept_float=kept_float,
                      evaluation=final.entries, structure=structure, cpu=cpu)


def needs_one_shape(method: str, quantizer: str = "auto") -> bool:
    """Whether calibration inputs must share one shape: histogram methods (ONNX Runtime stacks every
    calibration output) and ModelOpt (one calibration array)."""
    if method in ("entropy", "percentile"):
        return True
    if quantizer == "onnxruntime":
        return False
    try:
        import modelopt.onnx.quantization  # noqa: F401
    except ImportError:
        return False
    return True


def _check_float_budget(kept, first, max_float, total, weights_left: bool) -> None:
    """Raise the accuracy failure when too many nodes, or every weighted layer, would have to stay float."""
    if (max_float is None or len(kept) <= max_float) and len(kept) < total and weights_left:
        return
    names = ", ".join(sorted(kept)[:12]) + (f" (+{len(kept) - 12} more)" if len(kept) > 12 else "")
    limit = f"{len(kept)} nodes (limit {max_float})" if max_float is not None and len(kept) > max_float else \
        f"{len(kept)} nodes, which leaves no INT8 weight,"
    raise ParityError(search.describe(first.worst, "INT8 accuracy below the bars") + f"; meeting them needs "
                      f"{limit} in float: {names}", "argmax agreement and mean Dice at or above the INT8 bars",
                      "calibrate on more representative images (--calib-images), try --calib-method entropy or "
                      "percentile, raise --int8-max-float, or loosen --int8-argmax / --int8-dice",
                      search.table(first.entries, "INT8 (default quantization) vs eager FP32"))


def _reason(node: str, failures: dict, final: search.Evaluation) -> str:
    entry = failures.get(node)
    if entry is None:
        return "kept with its group by the search"
    w = final.worst
    return (f"quantized: argmax {entry['argmax_agreement']:.4f}, dice {entry['mean_dice']:.4f} on "
            f"{entry['input']} -> float: argmax {w['argmax_agreement']:.4f}, dice {w['mean_dice']:.4f}")


def _cpu_form(source, calibration, method, excluded, tmp, input_name, cpu_path, feeds, refs, labels, bars, name,
              say=lambda _msg: None):
    """Write the uint8-asymmetric ONNX Runtime CPU form and measure it (must meet the bars).

    It starts from the TensorRT form's float nodes; when that fails the bars (uint8 activations and
    ONNX Runtime's own kernels round differently), the same search finds the fewest further nodes to keep
    in float, so the form does not depend on one ONNX Runtime version's rounding."""
    base = frozenset(excluded)

    def cpu_quantize(extra: frozenset) -> onnx.ModelProto:
        return _ort_quantize(source, calibration, method, sorted(base | extra), False, tmp, input_name)

    state = search.Search(cpu_quantize, feeds, refs, list(labels), bars, lambda msg: say(f"{msg} (CPU form)"))
    default = cpu_quantize(frozenset())
    try:
        extra, _failures, _first = state.run(search.quantized_nodes(default), default)
    except ParityError as err:
        raise ParityError(f"the ONNX Runtime CPU INT8 form (uint8) is below the bars: {err.what}",
                          "the CPU form to meet the INT8 bars like the TensorRT form",
                          "drop --int8-cpu (the TensorRT form passed) or calibrate on more images") from None
    model = state.default if not extra else cpu_quantize(extra)
    evaluation = state.evaluate(extra, model)
    if not evaluation.passed:
        raise ParityError(search.describe(evaluation.worst, "the ONNX Runtime CPU INT8 form (uint8) is below the "
                                          "bars"), "the CPU form to meet the INT8 bars like the TensorRT form",
                          "drop --int8-cpu (the TensorRT form passed) or calibrate on more images",
                          search.table(evaluation.entries, "INT8 CPU form vs eager FP32"))
    structure = check_qdq(model, source, tensorrt=False)
    structure["kept_float_beyond_tensorrt_form"] = sorted(extra)  # nodes only the CPU form keeps in float
    for key, value in [("precision", "int8"), ("int8_form", "onnxruntime-cpu"), ("int8_quantizer", name)]:
        _set_metadata(model, key, value)
    atomic_write_bytes(cpu_path, model.SerializeToString())
    return {"path": os.fspath(cpu_path), "form": CPU_FORM, "evaluation": evaluation.entries, "structure": structure}


def _name_nodes(model: onnx.ModelProto) -> None:
    from ..fp16.search import name_nodes

    name_nodes(model.graph)


def _set_metadata(model: onnx.ModelProto, key: str, value: str) -> None:
    from ..fp16.convert import _set_metadata as set_meta

    set_meta(model, key, value)
