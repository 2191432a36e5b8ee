"""Parity machinery behind :func:`unetrt.exporter.fp16.convert_fp16` (private).

ONNX Runtime's CPU provider runs most FP16 ops (Conv, ConvTranspose, ...) through FP32 kernels and drops
the Cast pairs it inserts between them, so an FP16 graph on CPU only shows the effect of rounded weights.
:func:`emulate_storage` turns a converted graph into an FP32 graph that rounds every FP16 tensor of the
artifact through an explicit Cast pair (which ONNX Runtime keeps); :class:`Search` measures that
emulation against the references to decide which nodes must stay FP32.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir
from onnx import AttributeProto, TensorProto, helper, numpy_helper
from onnx_ir.passes.common import NameFixPass
from onnx_ir.passes.common.naming import SimpleNameGenerator

from ... import parity
from ...errors import ExportError, ParityError
from ...parity import Tolerance
from ..node_search import fewest_kept

_F32, _F16 = TensorProto.FLOAT, TensorProto.FLOAT16


@dataclass
class Evaluation:
    """Parity of one FP16/FP32 assignment: per feed and output entries and the worst of them."""

    passed: bool
    entries: list[dict]
    worst: dict


class _FreshNodeNames(SimpleNameGenerator):
    """Names for unnamed nodes (their op type) and repeated ones, never taken by another node of the graph."""

    def __init__(self, taken: set[str]):
        self._taken = set(taken)

    def generate_node_name(self, node: ir.Node) -> str:
        base = node.name or node.op_type
        name, k = base, 0
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name


def name_nodes(graph: onnx.GraphProto) -> None:
    """Give every node a unique, non-empty name (in place) with onnx-ir's ``NameFixPass``.

    Existing unique names are kept; an empty name becomes the op type, a repeated one gets a ``_N``
    suffix (never a name another node holds).
    """
    taken = [n.name for n in graph.node]
    if all(taken) and len(set(taken)) == len(taken):  # nothing to fix: skip the IR round trip
        return
    model = ir.Model(ir.serde.deserialize_graph(graph), ir_version=onnx.IR_VERSION)
    if NameFixPass(_FreshNodeNames({name for name in taken if name}))(model).modified:
        graph.CopyFrom(ir.serde.serialize_graph(model.graph))


def run_ort(model: onnx.ModelProto, feed: dict, *, optimize: bool = True) -> dict[str, np.ndarray]:
    """Run ``model`` on ONNX Runtime's CPU provider and return ``{output name: array}``."""
    from ...artifacts.ort import make_session

    # optimize=False keeps explicit rounding Casts exactly as written
    session = make_session(model.SerializeToString(), level="all" if optimize else "disable")
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def _badness(entry: dict) -> tuple:
    """Sort key: failing first, then by max_abs relative to its bar (NaN = non-finite = worst)."""
    ratio = entry["max_abs"] / max(entry["atol"], 1e-30)
    return (not entry["passed"], float("inf") if ratio != ratio else ratio, -entry["argmax_agreement"])


def tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every typed tensor (graph I/O, value_info, initializers) after shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def float_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Nodes (in graph order) with at least one FP32 or untyped output: the FP16 candidates."""
    types = tensor_types(model)
    return [n for n in model.graph.node if any(types.get(o, _F32) == _F32 for o in n.output if o)]


def fp32_nodes(source: onnx.ModelProto, converted: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Float nodes of ``source`` whose counterpart (same name) in ``converted`` still outputs FP32."""
    types = tensor_types(converted)
    by_name = {n.name: n for n in converted.graph.node}
    kept = []
    for node in float_nodes(source):
        twin = by_name.get(node.name)
        if twin is not None and any(types.get(o) == _F32 for o in twin.output if o):
            kept.append(node)
    return kept


def drop_cast_round_trips(model: onnx.ModelProto, keep: set[str]) -> None:
    """Remove converter-made FP32->FP16->FP32 Cast pairs between two FP32 nodes (in place).

    onnxconverter-common 1.16 leaves such a pair on every edge out of an FP32-kept node that has several
    consumers, so skip connections of FP32 nodes would still be rounded to FP16. Casts named in ``keep``
    (the source model's own nodes) are never touched.
    """
    g = model.graph
    types = tensor_types(model)
    producer = {o: n for n in g.node for o in n.output}
    outputs = {o.name for o in g.output}
    rewire: dict[str, str] = {}
    for node in g.node:
        up = producer.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        if (up is None or node.name in keep or up.name in keep or up.op_type != "Cast"
                or _cast_to(node) != _F32 or _cast_to(up) != _F16 or types.get(up.input[0]) != _F32
                or node.output[0] in outputs):
            continue
        rewire[node.output[0]] = up.input[0]
    if not rewire:
        return
    kept = [n for n in g.node if n.output[0] not in rewire]
    for node in kept:
        node.input[:] = [rewire.get(i, i) for i in node.input]
    used = {i for n in kept for i in n.input} | outputs
    kept = [n for n in kept if n.op_type != "Cast" or n.name in keep or n.output[0] in used]
    del g.node[:]
    g.node.extend(kept)


def fix_output_types(model: onnx.ModelProto, keep_io_types: bool) -> None:
    """Make FP32 graph outputs really FP32 when ``keep_io_types`` (in place).

    onnxconverter-common 1.16 ends the graph with a Cast to FP16 when the last node is kept FP32, so the
    "FP32" output silently becomes FP16; such a Cast is turned into a Cast to FP32.
    """
    if not keep_io_types:
        return
    types = tensor_types(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    for out in model.graph.output:
        node = producer.get(out.name)
        if types.get(out.name) == _F16 and node is not None and node.op_type == "Cast":
            if types.get(node.input[0]) == _F32:
                next(a for a in node.attribute if a.name == "to").i = _F32
                out.type.tensor_type.elem_type = _F32
                for vi in model.graph.value_info:
                    if vi.name == out.name:
                        vi.type.tensor_type.elem_type = _F32


def check_io_types(model: onnx.ModelProto, source: onnx.ModelProto, keep_io_types: bool) -> None:
    """Raise if a float graph input/output of ``source`` does not have the requested type in ``model``."""
    want = _F32 if keep_io_types else _F16
    types = tensor_types(model)
    for value in [*source.graph.input, *source.graph.output]:
        if value.type.tensor_type.elem_type == _F32 and types.get(value.name) != want:
            got = TensorProto.DataType.Name(types.get(value.name, 0))
            raise ExportError(f"FP16 converter left graph I/O {value.name!r} as {got}",
                              f"{TensorProto.DataType.Name(want)} (keep_io_types={keep_io_types})",
                              "report the model; try the other keep_io_types setting")


def _cast_to(node: onnx.NodeProto) -> int | None:
    """The ``to`` attribute of a Cast node."""
    return next((a.i for a in node.attribute if a.name == "to"), None)


def emulate_storage(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return an FP32 graph that rounds every FP16 tensor of ``model`` to FP16 through a Cast pair."""
    types = tensor_types(model)
    emu = copy.deepcopy(model)
    g = emu.graph
    for i, init in enumerate(g.initializer):
        if init.data_type == _F16:
            g.initializer[i].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(init).astype(np.float32), init.name))
    nodes = []
    for node in g.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == _F16:
                attr.i = _F32
            elif attr.type == AttributeProto.TENSOR and attr.t.data_type == _F16:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float32)))
        nodes.append(node)
        for k, out in enumerate(node.output):
            if out and types.get(out) == _F16:
                raw, half = f"{out}__unetrt_f32", f"{out}__unetrt_f16"
                node.output[k] = raw
                nodes.append(helper.make_node("Cast", [raw], [half], to=_F16, name=f"{node.name}__unetrt_to16_{k}"))
                nodes.append(helper.make_node("Cast", [half], [out], to=_F32, name=f"{node.name}__unetrt_to32_{k}"))
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    for value in [*g.input, *g.output]:
        if value.type.tensor_type.elem_type == _F16:
            value.type.tensor_type.elem_type = _F32
    return emu


def describe_first(failures: dict[str, dict]) -> str:
    """One phrase about the first node that failed in FP16, for error messages."""
    if not failures:
        return "none recorded"
    node, worst = next(iter(failures.items()))
    return describe(worst, f"node {node} in FP16")


def describe(worst: dict, prefix: str) -> str:
    """One phrase naming the feed and output of a parity entry and its numbers."""
    return (f"{prefix}: feed {worst['feed']} {worst['input_shapes']}, output {worst['output']!r}: max_abs "
            f"{worst['max_abs']:.3g} (bar {worst['atol']:.3g}), argmax agreement {worst['argmax_agreement']:.4f}")


class Search:
    """Find the FP32 node set: the converter's defaults if they pass, else bisection over float nodes.

    Args:
        source: The FP32 model (uniquely named nodes).
        feeds: Calibration feeds.
        references: Reference outputs per feed.
        bars: The pass/fail bars.
        keep_io_types: Whether graph I/O stays FP32.
        convert: ``convert(blocked node names) -> converted model``.
        progress: Status callback.
    """

    def __init__(self, source, feeds, references, bars: Tolerance, keep_io_types: bool,
                 convert: Callable[[frozenset], onnx.ModelProto], progress: Callable[[str], None]):
        self.source, self.feeds, self.references, self.bars = source, feeds, references, bars
        self.keep_io_types, self._convert, self._say = keep_io_types, convert, progress
        self._cache: dict[frozenset, Evaluation] = {}  # evaluations only: models can be large
        self.warnings: set[str] = set()
        self._source_names = {n.name for n in source.graph.node}
        self._default: onnx.ModelProto | None = None

    def convert(self, blocked: frozenset) -> onnx.ModelProto:
        """Run the converter with ``blocked`` nodes in FP32 and repair its known 1.16 quirks."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model = self._convert(blocked)
            except (ValueError, RuntimeError, onnx.checker.ValidationError) as exc:
                raise ExportError(f"FP16 converter failed: {exc}", "a convertible FP32 graph",
                                  "keep the offending op FP32 with block_ops") from exc
        self.warnings = {str(w.message) for w in caught}
        name_nodes(model.graph)
        drop_cast_round_trips(model, self._source_names)
        fix_output_types(model, self.keep_io_types)
        check_io_types(model, self.source, self.keep_io_types)
        return model

    def measure(self, model: onnx.ModelProto) -> Evaluation:
        """Parity of the FP16-storage emulation of ``model`` on every feed and output."""
        emu = emulate_storage(model)
        entries = []
        for i, (feed, ref) in enumerate(zip(self.feeds, self.references)):
            if not self.keep_io_types:
                feed = {k: np.asarray(v).astype(np.float16).astype(np.float32) for k, v in feed.items()}
            outs = run_ort(emu, feed, optimize=False)
            shapes = {k: "x".join(map(str, np.shape(v))) for k, v in feed.items()}
            for name in outs:
                entries.append({"feed": i, "input_shapes": shapes, "output": name,
                                **parity.compare(ref[name], outs[name], self.bars).to_dict()})
        worst = max(entries, key=_badness)
        return Evaluation(all(e["passed"] for e in entries), entries, worst)

    def evaluate(self, blocked: frozenset, model: onnx.ModelProto | None = None) -> Evaluation:
        """Convert with ``blocked`` nodes in FP32 (unless ``model`` is given) and measure it (cached)."""
        if blocked not in self._cache:
            evaluation = self.measure(self.convert(blocked) if model is None else model)
            self._cache[blocked] = evaluation
            worst = evaluation.worst
            self._say(f"fp16: {len(blocked)} extra nodes FP32 -> {'pass' if evaluation.passed else 'fail'} "
                      f"(max_abs {worst['max_abs']:.3g}, argmax {worst['argmax_agreement']:.4f})")
        return self._cache[blocked]

    def run(self) -> tuple[frozenset, dict[str, dict]]:
        """Return ``(node names kept FP32 beyond the defaults, {failed node: its worst entry})``."""
        default = self.convert(frozenset())
        if self.evaluate(frozenset(), default).passed:
            self._default = default  # reused by final(): converting is the slow part on large models
            return frozenset(), {}
        already = {n.name for n in fp32_nodes(self.source, default)}
        del default
        candidates = [n.name for n in float_nodes(self.source) if n.name not in already]
        everything = self.evaluate(frozenset(candidates))
        if not everything.passed:
            raise ParityError(describe(everything.worst, "FP16 parity fails even with every float node FP32"),
                              "the references to match the FP32 model and the I/O precision",
                              "check the references come from this model; keep_io_types=True or loosen the bars")
        return fewest_kept(candidates, self.evaluate)

    def final(self, blocked: frozenset) -> tuple[onnx.ModelProto, Evaluation]:
        """Return the converted model for ``blocked`` (validated by the ONNX checker) and its evaluation."""
        model = self._default if blocked == frozenset() and self._default is not None else self.convert(blocked)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"the FP16 converter produced an invalid graph: {exc}", "a valid ONNX graph",
                              "report the model; keep the offending op FP32 with block_ops") from exc
        return model, self.evaluate(blocked, model)

    def artifact_parity(self, model: onnx.ModelProto, evaluation: Evaluation) -> list[dict]:
        """Run the artifact itself on ONNX Runtime CPU and add ``ort_cpu_*`` numbers to each entry."""
        by_key = {(e["feed"], e["output"]): dict(e) for e in evaluation.entries}
        for i, (feed, ref) in enumerate(zip(self.feeds, self.references)):
            if not self.keep_io_types:
                feed = {k: np.asarray(v).astype(np.float16) for k, v in feed.items()}
            try:
                outs = run_ort(model, feed)
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ExportError(f"ONNX Runtime cannot run the FP16 graph: {exc}", "a runnable FP16 graph",
                                  "keep the offending op FP32 with block_ops") from exc
            for name, out in outs.items():
                check = parity.compare(ref[name], out, self.bars).to_dict()
                entry = by_key[(i, name)]
                entry.update(ort_cpu_max_abs=check["max_abs"], ort_cpu_argmax_agreement=check["argmax_agreement"])
                if not check["passed"]:
                    raise ParityError(describe({**entry, **check}, "the FP16 artifact on ONNX Runtime CPU"),
                                      "the artifact to match its FP16-storage emulation",
                                      "keep the offending op FP32 with block_ops")
        return list(by_key.values())

    def any_fp16(self, model: onnx.ModelProto) -> bool:
        """Whether at least one float node of the source runs in FP16 in ``model``."""
        return len(fp32_nodes(self.source, model)) < len(float_nodes(self.source))
