"""Accuracy of INT8 graphs against eager FP32, and the search for nodes that must stay float (private).

Quantization error is measured, not assumed: each candidate graph runs on ONNX Runtime's CPU provider
(which executes the Q/DQ arithmetic as written: int8 weights, int8 activations) over the evaluation
inputs and is compared with the eager FP32 references by mask agreement (argmax over classes, or
the sign of a single logit), per-class Dice and IoU, and max/mean absolute error. When the default
quantization breaks the bars, :class:`Search` keeps every quantized node in float, checks that this
passes, and then re-quantizes groups of nodes in graph order, halving a group whenever it breaks the
bars, so only the nodes that need float stay float (the same bisection as the FP16 search).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from ... import parity
from ...errors import ExportError, ParityError
from ..fp16.search import run_ort
from ...parity import INT8_MIN_ARGMAX, INT8_MIN_DICE, Tolerance
from ..node_search import fewest_kept

__all__ = ["Int8Bars", "Evaluation", "measure", "quantized_nodes", "Search", "table"]


@dataclass(frozen=True)
class Int8Bars:
    """Pass/fail bars of an INT8 graph against eager FP32 (both on every evaluation input).

    Attributes:
        min_argmax_agreement: Share of pixels whose class matches the reference (all pixels).
        min_mean_dice: Mean Dice of the INT8 masks against the FP32 masks, over the classes
            present in either mask.
    """

    min_argmax_agreement: float = INT8_MIN_ARGMAX
    min_mean_dice: float = INT8_MIN_DICE

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not 0.0 <= float(value) <= 1.0:
                raise ExportError(f"INT8 bar {name}={value}", "a value between 0 and 1", "fix the bar")

    def to_dict(self) -> dict:
        """Return a JSON-serialisable copy."""
        return asdict(self)


@dataclass
class Evaluation:
    """Accuracy of one INT8 graph: one entry per evaluation input, the worst one, and the verdict."""

    passed: bool
    entries: list[dict]
    worst: dict


def measure(ref: np.ndarray, out: np.ndarray, bars: Int8Bars) -> dict:
    """Compare one INT8 output with its FP32 reference (NCHW logits) via :func:`unetrt.parity.compare`.

    Returns:
        ``max_abs``, ``mean_abs``, ``argmax_agreement`` (every pixel), ``per_class`` (``{class: {"dice",
        "iou"}}`` over classes present in either mask), ``mean_dice``, ``mean_iou``, ``passed``, ``reason``.
    """
    result = parity.compare(ref, out, Tolerance(atol_factor=1.0))  # max-abs bar unused: INT8 bars below
    if result.reason and result.max_abs != result.max_abs:  # shape mismatch or non-finite output
        return {"max_abs": float("nan"), "mean_abs": float("nan"), "argmax_agreement": 0.0, "per_class": {},
                "mean_dice": 0.0, "mean_iou": 0.0, "passed": False, "reason": result.reason}
    scores = parity.class_scores(parity.class_masks(ref), parity.class_masks(out), np.shape(ref)[1])
    per_class = {str(c): {"dice": dice, "iou": iou} for c, (iou, dice) in scores.items()}
    agreement = result.argmax_agreement_all
    reasons = []
    if agreement < bars.min_argmax_agreement:
        reasons.append(f"argmax agreement {agreement:.4f} < {bars.min_argmax_agreement:g}")
    if result.dice < bars.min_mean_dice:
        reasons.append(f"mean Dice {result.dice:.4f} < {bars.min_mean_dice:g}")
    return {"max_abs": result.max_abs, "mean_abs": result.mean_abs, "argmax_agreement": agreement,
            "per_class": per_class, "mean_dice": result.dice, "mean_iou": result.mean_iou, "passed": not reasons,
            "reason": "; ".join(reasons)}


def _badness(entry: dict) -> tuple:
    """Sort key: failing first, then the lower agreement / Dice."""
    return (not entry["passed"], -min(entry["argmax_agreement"], entry["mean_dice"]))


def evaluate(model: onnx.ModelProto, feeds: list[dict], references: list[dict], labels: list[str],
             bars: Int8Bars) -> Evaluation:
    """Run ``model`` on every feed (ONNX Runtime CPU) and measure it against the references."""
    entries = []
    for label, feed, ref in zip(labels, feeds, references):
        try:
            outs = run_ort(model, feed)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ExportError(f"ONNX Runtime cannot run the INT8 graph: {' '.join(str(exc).split())[:300]}",
                              "a runnable Q/DQ graph", "exclude the offending node from quantization") from exc
        shapes = "x".join(map(str, next(iter(feed.values())).shape))
        for name, out in outs.items():
            entries.append({"input": label, "input_shape": shapes, "output": name, **measure(ref[name], out, bars)})
    worst = max(entries, key=_badness)
    return Evaluation(all(e["passed"] for e in entries), entries, worst)


def quantized_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the compute nodes of a Q/DQ graph that take a DequantizeLinear output (run in INT8)."""
    dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [n.name for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
            and any(i in dq_outputs for i in n.input)]


def describe(entry: dict, prefix: str) -> str:
    """One phrase naming the input and output of an entry and its numbers."""
    return (f"{prefix}: input {entry['input']} ({entry['input_shape']}), output {entry['output']!r}: argmax "
            f"agreement {entry['argmax_agreement']:.4f}, mean Dice {entry['mean_dice']:.4f}, max abs "
            f"{entry['max_abs']:.3g}")


def table(entries: list[dict], title: str) -> str:
    """A plain-text table of evaluation entries (for error messages and logs)."""
    lines = [title, f"{'input':<24} {'shape':>14} {'argmax':>8} {'dice':>7} {'iou':>7} {'max abs':>9} "
                    f"{'mean abs':>9}  ok"]
    for e in entries:
        lines.append(f"{e['input'][:24]:<24} {e['input_shape']:>14} {e['argmax_agreement']:>8.4f} "
                     f"{e['mean_dice']:>7.4f} {e['mean_iou']:>7.4f} {e['max_abs']:>9.3g} {e['mean_abs']:>9.3g}  "
                     f"{'yes' if e['passed'] else 'NO'}")
    return "\n".join(lines)


class Search:
    """Find the nodes to keep in float: none if the default quantization passes, else bisection.

    Args:
        quantize: ``quantize(excluded node names) -> Q/DQ model``.
        feeds: Evaluation feeds; ``references``: eager FP32 outputs per feed; ``labels``: their names.
        bars: The bars.
        progress: Status callback.
    """

    def __init__(self, quantize: Callable[[frozenset], onnx.ModelProto], feeds: list[dict],
                 references: list[dict], labels: list[str], bars: Int8Bars, progress: Callable[[str], None]):
        self._quantize, self.feeds, self.references, self.labels = quantize, feeds, references, labels
        self.bars, self._say = bars, progress
        self._cache: dict[frozenset, Evaluation] = {}
        self.default: onnx.ModelProto | None = None

    def evaluate(self, excluded: frozenset, model: onnx.ModelProto | None = None) -> Evaluation:
        """Quantize with ``excluded`` nodes in float (unless ``model`` is given) and measure it (cached)."""
        if excluded not in self._cache:
            model = self._quantize(excluded) if model is None else model
            result = evaluate(model, self.feeds, self.references, self.labels, self.bars)
            self._cache[excluded] = result
            w = result.worst
            self._say(f"int8: {len(excluded)} node(s) in float -> {'pass' if result.passed else 'fail'} "
                      f"(argmax {w['argmax_agreement']:.4f}, dice {w['mean_dice']:.4f})")
        return self._cache[excluded]

    def run(self, candidates: list[str], default: onnx.ModelProto | None = None
            ) -> tuple[frozenset, dict[str, dict], Evaluation]:
        """Return ``(nodes kept float, {node: worst entry with it quantized}, the default's evaluation)``.

        Raises:
            ParityError: Even with every candidate in float the bars fail (with the table).
        """
        self.default = self._quantize(frozenset()) if default is None else default
        first = self.evaluate(frozenset(), self.default)
        if first.passed:
            return frozenset(), {}, first
        everything = self.evaluate(frozenset(candidates))
        if not everything.passed:
            raise ParityError(describe(everything.worst, "INT8 accuracy fails even with every quantized node "
                                                         "in float"),
                              "references computed from this model at these inputs",
                              "check the references come from this model", table(everything.entries, "INT8"))
        keep, failures = fewest_kept(candidates, self.evaluate)
        return keep, failures, first
