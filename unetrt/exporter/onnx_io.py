"""torch → ONNX: convert an ExportedProgram (or fall back to the TorchScript exporter),
tidy the graph and save it as one self-contained file."""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import operator
import os
import warnings
from pathlib import Path

import onnx
import onnx_ir as ir
import torch
from onnx_ir.passes.common import RemoveUnusedNodesPass
from torch import nn

from ..errors import ExportError
from ..fileio import atomic_path

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
TWO_GB = 2**31 - 2**24  # protobuf's hard limit, with headroom
_DIM_NAMES = ("batch", None, "height", "width")
_DIM_NAMES_3D = ("batch", None, "depth", "height", "width")


def output_names(out) -> list[str]:
    """Stable ONNX output names for a model's eager output.

    A tensor is ``logits``; a list/tuple gives ``logits``, ``logits_1``, ...; a dict gives its keys
    (in order; nested containers are flattened, their leaves numbered after the key).
    """
    from torch.utils._pytree import tree_leaves

    if isinstance(out, torch.Tensor):
        return [OUTPUT_NAME]
    if isinstance(out, dict):
        names: list[str] = []
        for key, value in out.items():
            count = sum(isinstance(t, torch.Tensor) for t in tree_leaves(value))
            base = "".join(c if c.isalnum() or c in "_.-" else "_" for c in str(key)) or OUTPUT_NAME
            names.extend([base] if count == 1 else [f"{base}_{i}" for i in range(count)])
        return names
    count = sum(isinstance(t, torch.Tensor) for t in tree_leaves(out))
    return [OUTPUT_NAME] + [f"{OUTPUT_NAME}_{i}" for i in range(1, count)]


@contextlib.contextmanager
def quiet_torch():
    """Silence torch.onnx's progress prints (stdout must stay clean for --json) and noisy logs."""
    loggers = [logging.getLogger(n) for n in (
        "torch.onnx", "torch.onnx._internal.exporter._registration", "torch._dynamo", "torch.export",
        "torch._export", "torch.fx.experimental.symbolic_shapes", "torch._subclasses.fake_tensor")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # torch's own pytree deprecation inside its exporter; not actionable for users
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def _floordiv(self, other):
    """Python's floor division of (symbolic) ints: ``(a - a mod b) / b``.

    torch's exporter lowers ``operator.floordiv`` on sizes to ONNX integer ``Div``, which
    truncates toward zero: ``-1 // 2`` becomes 0 instead of -1. milesial's ``F.pad`` formula
    hits that as soon as a size difference is negative (a decoder map larger than its skip, as
    in ceil-rounding ResNet encoders), cropping on the wrong side. ``Mod`` with ``fmod=0`` takes
    the divisor's sign, so the subtraction leaves an exact multiple and ``Div`` is exact.
    """
    from onnxscript import opset18 as op

    return op.Div(op.Sub(self, op.Mod(self, other)), other)


#: The lowest opset the exporter writes (torch's ONNX exporter starts at 18).
MIN_OPSET = 18


def max_opset() -> int:
    """The highest opset both the installed torch ONNX exporter and the onnx package support."""
    from torch.onnx import _constants  # torch states its exporter's range only here

    return min(int(getattr(_constants, "ONNX_MAX_OPSET", MIN_OPSET)), onnx.defs.onnx_opset_version())


def file_opset(model: onnx.ModelProto) -> int:
    """The default-domain opset a model was written with (0 when it names none)."""
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def from_exported_program(program, sample: torch.Tensor, opset: int,
                          names: list[str] | None = None) -> onnx.ModelProto:
    """Convert a ``torch.export`` ExportedProgram with torch's ONNX exporter (``names``: output names)."""
    with quiet_torch():
        onnx_program = torch.onnx.export(program, (sample,), dynamo=True, opset_version=opset,
                                         input_names=[INPUT_NAME], output_names=names or [OUTPUT_NAME],
                                         custom_translation_table={operator.floordiv: _floordiv},
                                         optimize=True, verbose=False)
    return onnx_program.model_proto


def from_torchscript(model: nn.Module, sample: torch.Tensor, opset: int, dynamic: bool,
                     output_names: list[str] | None = None) -> onnx.ModelProto:
    """The TorchScript-based exporter, for models ``torch.export`` cannot trace.

    It records one branch of every Python ``if``: only the verification sweep guards the
    result, so the pipeline widens the sweep when this path is taken.
    """
    names = output_names or [OUTPUT_NAME]
    spatial = ("depth", "height", "width")[5 - sample.dim():]
    axes = None
    if dynamic:
        axes = {INPUT_NAME: {0: "batch", **{i + 2: n for i, n in enumerate(spatial)}}}
        axes.update({o: {0: "batch", **{i + 2: f"out_{n}" for i, n in enumerate(spatial)}} for o in names})
    buf = io.BytesIO()
    with quiet_torch(), torch.no_grad():
        torch.onnx.export(model, (sample,), buf, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                          output_names=names, dynamic_axes=axes, do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def rename_dynamic_dims(model: onnx.ModelProto, same_geometry: bool) -> None:
    """Give symbolic dims readable names: batch/(depth/)height/width (output: same names when the
    output has the input's size, else out_height/out_width, suffixed per extra output)."""
    graph_in = model.graph.input[0].type.tensor_type.shape.dim
    labels = _DIM_NAMES_3D if len(graph_in) == 5 else _DIM_NAMES
    mapping: dict[str, str] = {}
    for dim, name in zip(graph_in, labels):
        if name and dim.HasField("dim_param"):
            mapping[dim.dim_param] = name
            dim.dim_param = name
    for k, out in enumerate(model.graph.output):
        dims = out.type.tensor_type.shape.dim
        suffix = f"_{k}" if k else ""  # a second output may have other sizes (deep supervision)
        for i, dim in enumerate(dims):
            if not dim.HasField("dim_param"):
                continue
            if dim.dim_param in mapping and (i == 0 or same_geometry):
                dim.dim_param = mapping[dim.dim_param]
            elif i >= 2 and labels[i:i + 1] and labels[i]:
                dim.dim_param = "out_" + labels[i] + suffix
    for vi in model.graph.value_info:
        for dim in vi.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in mapping:
                dim.dim_param = mapping[dim.dim_param]


def strip_noop_pads(model: onnx.ModelProto) -> int:
    """Remove ``Pad`` nodes whose pads are a constant of zeros (in place); return how many.

    Aligned export leaves such Pads of milesial's ``F.pad``; onnxsim drops most of them itself, so
    the pipeline calls this once, after simplifying, for what is left (``--no-simplify``, or a graph
    onnxsim refused). Consumers are rewired to the Pad's input and the now-dead nodes and
    initializers are dropped with onnx-ir's ``RemoveUnusedNodesPass``.
    """
    if not any(node.op_type == "Pad" for node in model.graph.node):
        return 0  # nothing to look at: skip the IR round trip
    ir_model = ir.serde.deserialize_model(model)
    outputs = set(ir_model.graph.outputs)
    removed = 0
    for node in list(ir_model.graph):
        if node.op_type != "Pad" or node.domain not in ("", "ai.onnx") or len(node.inputs) < 2:
            continue
        data, pads = node.inputs[0], node.inputs[1]
        const = ir.convenience.get_const_tensor(pads) if pads is not None else None
        if data is None or const is None or const.numpy().any() or node.outputs[0] in outputs:
            continue
        ir.convenience.replace_all_uses_with(node.outputs[0], data)
        removed += 1
    if removed:
        RemoveUnusedNodesPass()(ir_model)
        model.CopyFrom(ir.serde.serialize_model(ir_model))
    return removed


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Set (replace) ONNX ``metadata_props`` entries; the others are kept."""
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **props})


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike) -> list[Path]:
    """Write ``model`` atomically as one self-contained file; external data only above 2 GB.

    Returns the written files (the .onnx, plus ``<name>.data`` for a >2 GB model).
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            if model.ByteSize() < TWO_GB:
                onnx.save_model(model, str(tmp), save_as_external_data=False)
                return [path]
            data_name = path.name + ".data"  # written beside the temp file, i.e. beside the target
            onnx.save_model(model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data_name)
            return [path, path.parent / data_name]
    except Exception as exc:
        raise ExportError(f"could not write {path}: {exc}", "a writable output directory",
                          "check the path and free disk space") from exc


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """``{op_type: number of nodes}`` of the main graph, sorted by op type."""
    return dict(sorted(collections.Counter(node.op_type for node in model.graph.node).items()))
