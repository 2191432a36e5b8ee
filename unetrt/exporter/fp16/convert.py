"""FP16 ONNX: an FP32 graph converted to FP16 weights and activations, kept accurate by a parity search.

The conversion itself is done by a maintained converter: onnxconverter-common's
``float16.convert_float_to_float16`` or, when importable, NVIDIA ModelOpt AutoCast. Around it this
module adds what a deployable UNet needs: unique node names (onnxconverter-common 1.16 otherwise emits
duplicate Cast outputs that TensorRT rejects), a parity search that keeps the nodes that lose accuracy in
FP32, an atomic self-contained write, and the source's ``metadata_props`` plus ``precision=fp16``.

Why parity is measured on an emulation: ONNX Runtime's CPU provider has no FP16 kernels for Conv and
most other ops. It wraps them in Casts to FP32 and then removes the Cast pairs between neighbouring
nodes, so an FP16 graph run on CPU keeps its activations in FP32 and only its weights are rounded; its
error says nothing about overflow or rounding of activations. The search therefore runs an *emulation of
the converted graph*: every FP16 tensor of the artifact becomes an FP32 tensor rounded to FP16 through an
explicit Cast pair (which ONNX Runtime keeps, as it loses precision). The artifact itself is also run on
ONNX Runtime, once, as a smoke check; both are reported.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx
from onnx import TensorProto

from ...errors import ExportError, MissingDependencyError, ParityError
from . import search
from ...parity import Tolerance
from ...fileio import atomic_write_bytes

__all__ = ["Fp16Result", "convert_fp16"]

_MAX_PROTO_BYTES = 2**31 - 1
Progress = Callable[[str], None]


@dataclass
class Fp16Result:
    """What :func:`convert_fp16` wrote and how well it matches the reference.

    Attributes:
        path: The written FP16 ONNX file.
        converter: Converter name and version, e.g. ``"onnxconverter-common 1.16.0 (float16)"``.
        keep_io_types: Whether graph inputs and outputs stayed FP32.
        kept_fp32: Compute nodes left in FP32, each ``{"node", "op", "reason"}``.
        node_count: Number of nodes in the written graph.
        parity: One entry per calibration feed and output: ``feed``, ``input_shapes``, ``output``, the
            :class:`unetrt.parity.OutputParity` fields of the FP16-storage emulation (``max_abs``,
            ``argmax_agreement``, ``atol``, ``passed``, ...) and ``ort_cpu_max_abs`` /
            ``ort_cpu_argmax_agreement`` of the artifact as ONNX Runtime CPU runs it (FP32 compute).
        warnings: Distinct converter warnings (e.g. weights clamped to the FP16 range).
    """

    path: str
    converter: str
    keep_io_types: bool
    kept_fp32: list[dict]
    node_count: int
    parity: list[dict]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable copy."""
        return asdict(self)


def convert_fp16(onnx_path: str | os.PathLike, out_path: str | os.PathLike, *,
                 feeds: list[dict[str, np.ndarray]],
                 references: list[dict[str, np.ndarray]] | None = None,
                 keep_io_types: bool = True, max_abs_tol: float | None = None,
                 min_argmax_agreement: float = 0.995, block_ops: Sequence[str] = (),
                 progress: Progress | None = None, converter: str = "auto") -> Fp16Result:
    """Convert an FP32 ONNX model to FP16, keeping in FP32 the nodes that break parity.

    The search starts from the converter's defaults. If the bars fail, it keeps FP32 every candidate
    node, checks that this passes, then moves groups of nodes (in topological order) back to FP16,
    halving a group whenever it breaks the bars, so only the nodes that need FP32 stay there.

    Args:
        onnx_path: Source FP32 ONNX file (dynamic axes are kept as they are).
        out_path: Where to write the FP16 model (atomically, one self-contained file).
        feeds: Calibration inputs, one dict ``{input name: float32 array}`` per run.
        references: Expected outputs per feed (e.g. eager PyTorch FP32), ``{output name: array}``.
            ``None`` uses ONNX Runtime FP32 on the source model.
        keep_io_types: Keep graph inputs and outputs FP32 (``False``: FP16 I/O).
        max_abs_tol: Factor of the max-abs bar ``tol * max(1, max|ref|)``; ``None`` means 1e-2.
        min_argmax_agreement: Minimum share of pixels whose class (argmax over axis 1, or the sign of a
            single-channel logit) matches the reference.
        block_ops: Extra op types to keep in FP32.
        progress: Called with one-line status messages.
        converter: ``"auto"`` (ModelOpt AutoCast when importable, else onnxconverter-common),
            ``"onnxconverter-common"`` or ``"modelopt"``.

    Returns:
        An :class:`Fp16Result`.

    Raises:
        ParityError: No FP16/FP32 assignment meets the bars (names the feed and output that broke).
        ExportError: The source is not a usable FP32 model or the converter produced an invalid graph.
        MissingDependencyError: The requested converter is not installed.
    """
    say = progress or (lambda _msg: None)
    tol = 1e-2 if max_abs_tol is None else float(max_abs_tol)
    if tol < 0 or not 0.0 <= min_argmax_agreement <= 1.0:
        raise ExportError(f"bad FP16 bars: max_abs_tol={max_abs_tol}, min_argmax_agreement={min_argmax_agreement}",
                          "max_abs_tol >= 0 and 0 <= min_argmax_agreement <= 1", "fix the arguments")
    source = _load_fp32(onnx_path)
    _check_feeds(source, feeds, references)
    if references is None:
        say("fp16: computing ONNX Runtime FP32 references")
        references = [search.run_ort(source, feed) for feed in feeds]
    convert, name, default_ops = _pick_converter(converter)
    user_ops = set(block_ops)
    bars = Tolerance(atol_factor=tol, min_argmax_agreement=min_argmax_agreement)
    state = search.Search(source, feeds, references, bars, keep_io_types,
                          convert=lambda blocked: convert(copy.deepcopy(source), default_ops | user_ops, blocked,
                                                           keep_io_types),
                          progress=say)
    blocked, failures = state.run()
    model, evaluation = state.final(blocked)
    parity = state.artifact_parity(model, evaluation)
    kept = _kept_fp32(source, model, failures, user_ops, default_ops, evaluation)
    if not state.any_fp16(model):
        why = (f"within the bars (first failure: {search.describe_first(failures)})" if failures
               else "(every float node is kept FP32 by block_ops or the converter's block list)")
        raise ParityError(f"no float node of {os.fspath(onnx_path)} runs in FP16 {why}",
                          f"max_abs <= {tol:g}*max(1,|ref|) and argmax agreement >= {min_argmax_agreement:g}",
                          "loosen max_abs_tol / min_argmax_agreement, or deploy FP32")
    for key, value in [("precision", "fp16"), ("fp16_converter", name)]:
        _set_metadata(model, key, value)
    _save_atomic(model, out_path)
    say(f"fp16: wrote {os.fspath(out_path)} ({len(kept)} nodes kept FP32)")
    return Fp16Result(path=os.fspath(out_path), converter=name, keep_io_types=keep_io_types,
                      kept_fp32=kept, node_count=len(model.graph.node), parity=parity,
                      warnings=sorted(state.warnings))


def _load_fp32(path) -> onnx.ModelProto:
    """Load the source model, give every node a unique name and refuse FP16 or oversized models."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ExportError(f"ONNX file not found: {path}", "an existing FP32 .onnx file", "export the model first")
    model = onnx.load(path)
    if model.ByteSize() > _MAX_PROTO_BYTES:
        raise ExportError(f"{path} is over 2 GB", "a model under 2 GB (one self-contained file)",
                          "FP16 conversion of models of 2 GB or more is not supported")
    graph = model.graph
    if any(t.data_type == TensorProto.FLOAT16 for t in graph.initializer) or any(
            v.type.tensor_type.elem_type == TensorProto.FLOAT16 for v in list(graph.input) + list(graph.output)):
        raise ExportError(f"{path} already holds FP16 tensors", "an FP32 source model",
                          "pass the FP32 ONNX, not the FP16 one")
    search.name_nodes(graph)
    # value_info for initializers makes onnxconverter-common round the weights of FP32-kept nodes
    initializers = {t.name for t in graph.initializer}
    infos = [v for v in graph.value_info if v.name not in initializers]
    del graph.value_info[:]
    graph.value_info.extend(infos)
    return model


def _check_feeds(model: onnx.ModelProto, feeds, references) -> None:
    """Validate calibration feeds and references against the graph's I/O names."""
    inputs = {i.name for i in model.graph.input} - {t.name for t in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    if not feeds:
        raise ExportError("no calibration feeds given", "at least one {input name: array} dict",
                          "pass feeds=[{'input': x}] with a representative image")
    floats = {i.name for i in model.graph.input if i.type.tensor_type.elem_type == TensorProto.FLOAT}
    for i, feed in enumerate(feeds):
        if set(feed) != inputs:
            raise ExportError(f"calibration feed {i} has inputs {sorted(feed)}", f"exactly {sorted(inputs)}",
                              "name every graph input in each feed")
        wrong = {k: str(np.asarray(v).dtype) for k, v in feed.items()
                 if k in floats and np.asarray(v).dtype != np.float32}
        if wrong:
            raise ExportError(f"calibration feed {i} has dtypes {wrong}", "float32 arrays for float inputs",
                              "convert with x.astype(np.float32)")
    if references is not None:
        if len(references) != len(feeds):
            raise ExportError(f"{len(references)} references for {len(feeds)} feeds", "one reference per feed",
                              "pass references in the order of feeds, or None")
        for i, ref in enumerate(references):
            if not outputs <= set(ref):
                raise ExportError(f"reference {i} has outputs {sorted(ref)}", f"all of {sorted(outputs)}",
                                  "pass {output name: array} per feed")


def _pick_converter(which: str):
    """Return ``(convert(model, ops, nodes, keep_io), description, default op block list)``."""
    if which not in ("auto", "onnxconverter-common", "modelopt"):
        raise ExportError(f"unknown FP16 converter {which!r}", "'auto', 'onnxconverter-common' or 'modelopt'",
                          "pick one of those")
    if which in ("auto", "modelopt"):
        try:
            from modelopt.onnx.autocast import convert_to_mixed_precision
            import modelopt
            return _modelopt_converter(convert_to_mixed_precision), \
                f"modelopt autocast {modelopt.__version__}", frozenset()
        except ImportError:
            if which == "modelopt":
                raise MissingDependencyError("NVIDIA ModelOpt is not installed", "modelopt.onnx.autocast",
                                             "pip install 'nvidia-modelopt[onnx]'") from None
    try:
        import onnxconverter_common
        from onnxconverter_common import float16
    except ImportError:
        raise MissingDependencyError("onnxconverter-common is not installed", "the FP16 converter",
                                     "pip install 'onnxconverter-common>=1.14'") from None

    def convert(model, ops, nodes, keep_io):
        return float16.convert_float_to_float16(model, keep_io_types=keep_io, op_block_list=sorted(ops),
                                                node_block_list=sorted(nodes))
    return convert, f"onnxconverter-common {onnxconverter_common.__version__} (float16)", \
        frozenset(float16.DEFAULT_OP_BLOCK_LIST)


def _modelopt_converter(convert_to_mixed_precision):
    """Wrap ModelOpt AutoCast (path based) as ``convert(model, ops, nodes, keep_io)``."""
    import re

    def convert(model, ops, nodes, keep_io):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "source.onnx")
            onnx.save(model, path)
            return convert_to_mixed_precision(
                onnx_path=path, low_precision_type="fp16", keep_io_types=keep_io,
                nodes_to_exclude=[f"^{re.escape(n)}$" for n in sorted(nodes)] or None,
                op_types_to_exclude=sorted(ops) or None)
    return convert


def _kept_fp32(source, model, failures, user_ops, default_ops, evaluation) -> list[dict]:
    """List the source's float compute nodes that are FP32 in ``model``, with the reason why."""
    final = evaluation.worst
    kept = []
    for node in search.fp32_nodes(source, model):
        if node.name in failures:
            reason = f"parity search: {_numbers(failures[node.name])} -> {_numbers(final)}"
        elif node.op_type in user_ops:
            reason = "block_ops"
        elif node.op_type in default_ops:
            reason = "converter default block list"
        else:
            reason = "converter choice"
        kept.append({"node": node.name, "op": node.op_type, "reason": reason})
    return kept


def _numbers(entry: dict) -> str:
    """``max_abs ..., argmax ...`` of a parity entry, or "non-finite output"."""
    if entry["max_abs"] != entry["max_abs"]:
        where = f"feed {entry['feed']}, {entry['output']}"
        return f"non-finite output ({where})"
    return f"max_abs {entry['max_abs']:.3g}, argmax {entry['argmax_agreement']:.4f}"


def _set_metadata(model: onnx.ModelProto, key: str, value: str) -> None:
    """Set one ``metadata_props`` entry, replacing an existing one."""
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))


def _save_atomic(model: onnx.ModelProto, out_path) -> None:
    """Write ``model`` as one self-contained file, atomically."""
    atomic_write_bytes(out_path, model.SerializeToString())

