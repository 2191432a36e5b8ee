"""onnxsim, without ever baking in a sample size."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import onnx


@dataclass
class SimplifyReport:
    nodes_before: int
    nodes_after: int
    applied: bool
    message: str = ""

    def to_dict(self) -> dict:
        """The report as a JSON-able dict."""
        return asdict(self)


def _input_dims(model: onnx.ModelProto) -> list[list[str | int]]:
    return [[d.dim_param if d.HasField("dim_param") else d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input]


def simplify(model: onnx.ModelProto) -> tuple[onnx.ModelProto, SimplifyReport]:
    """Run onnxsim with the graph's own (symbolic) input shapes.

    No input shapes are overwritten, so dynamic axes stay dynamic; the result is rejected
    (and the input kept) if onnxsim fails or changes the input signature.
    """
    before = len(model.graph.node)
    try:
        import onnxsim

        simplified, ok = onnxsim.simplify(model, check_n=0)
    except Exception as exc:  # onnxsim raises plain RuntimeErrors from C++
        return model, SimplifyReport(before, before, False, f"onnxsim failed, graph kept as exported: {exc}")
    if not ok:
        return model, SimplifyReport(before, before, False, "onnxsim check failed, graph kept as exported")
    if _input_dims(simplified) != _input_dims(model):
        return model, SimplifyReport(before, before, False, "onnxsim changed the input shapes, graph kept")
    return simplified, SimplifyReport(before, len(simplified.graph.node), True)
