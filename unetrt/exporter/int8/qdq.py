"""Q/DQ structure checks of INT8 graphs: what TensorRT's ONNX parser takes, usable by tests and the export.

TensorRT (10, 11, RTX) takes explicit quantization only in the symmetric form: int8 zero points that
are all 0 and no int32 DequantizeLinear inputs (quantized biases). ONNX Runtime's CPU form (uint8
asymmetric activations) is checked for what both forms share: int8 weights, constant positive scales,
FP32 graph I/O with the source's dynamic dimensions.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ...errors import QuantizationError

__all__ = ["check_qdq"]


def check_qdq(model: onnx.ModelProto, source: onnx.ModelProto, *, tensorrt: bool = True) -> dict:
    """Check the Q/DQ structure of a quantized graph; return a summary of it.

    With ``tensorrt`` (the TensorRT form): every zero point is an int8 zero, every quantized
    initializer (weight) is int8 and none is int32 (no quantized bias), scales are finite and
    positive. Always: FP32 graph I/O with the source's dynamic dimensions, some int8 weights.

    Raises:
        QuantizationError: Naming the first tensor or value that breaks the form.
    """
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    qs = [n for n in g.node if n.op_type == "QuantizeLinear"]
    dqs = [n for n in g.node if n.op_type == "DequantizeLinear"]
    weights = [inits[n.input[0]] for n in dqs if n.input[0] in inits]
    fix = "re-quantize with the TensorRT form (symmetric int8, QuantizeBias=False)"
    if not any(w.data_type in (TensorProto.INT8, TensorProto.UINT8) for w in weights):
        raise QuantizationError("the quantized graph has no int8 weights", "int8 Conv/ConvTranspose weights",
                                "the model has no layer the quantizer takes to INT8; deploy FP32/FP16")
    per_channel = 0
    for node in qs + dqs:
        scale = inits.get(node.input[1]) if len(node.input) > 1 else None
        if scale is None:
            raise QuantizationError(f"{node.op_type} {node.name!r} has a computed scale", "constant scales", fix)
        values = numpy_helper.to_array(scale)
        if not (np.all(np.isfinite(values)) and np.all(values > 0)):
            raise QuantizationError(f"{node.op_type} {node.name!r} has scale(s) {values.ravel()[:4]}",
                                    "finite positive scales", "calibrate on representative, non-constant inputs")
        per_channel += int(node.op_type == "DequantizeLinear" and node.input[0] in inits and values.size > 1)
        if not tensorrt:
            continue
        zp = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zp is None or zp.data_type != TensorProto.INT8 or np.any(numpy_helper.to_array(zp) != 0):
            got = "none (uint8 by default)" if zp is None else \
                f"{TensorProto.DataType.Name(zp.data_type)} {numpy_helper.to_array(zp).ravel()[:4]}"
            raise QuantizationError(f"{node.op_type} {node.name!r} has zero point {got}",
                                    "int8 zero points, all 0 (TensorRT takes symmetric quantization only)", fix)
    if tensorrt:
        wide = [w.name for w in weights if w.data_type != TensorProto.INT8]
        if wide:
            raise QuantizationError(f"DequantizeLinear input {wide[0]!r} is "
                                    f"{TensorProto.DataType.Name(inits[wide[0]].data_type)}",
                                    "int8 quantized weights only (TensorRT rejects int32 bias DequantizeLinear)", fix)
    _check_io(model, source)
    return {"quantize_linear": len(qs), "dequantize_linear": len(dqs), "int8_weights": len(weights),
            "per_channel_weights": per_channel, "zero_points": "int8, all 0" if tensorrt else "uint8 activations",
            "int32_bias_dq": sum(w.data_type == TensorProto.INT32 for w in weights), "io": "float32"}


def _int8_weights(model: onnx.ModelProto) -> bool:
    """Whether some DequantizeLinear dequantizes an int8/uint8 initializer (a quantized weight)."""
    inits = {t.name: t.data_type for t in model.graph.initializer}
    return any(n.op_type == "DequantizeLinear" and inits.get(n.input[0]) in (TensorProto.INT8, TensorProto.UINT8)
               for n in model.graph.node)


def _dims(value) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _check_io(model, source) -> None:
    """FP32 graph I/O with the source's (dynamic) dimensions."""
    mine = {v.name: v for v in [*model.graph.input, *model.graph.output]}
    for value in [*source.graph.input, *source.graph.output]:
        twin = mine.get(value.name)
        if twin is None or twin.type.tensor_type.elem_type != TensorProto.FLOAT or _dims(twin) != _dims(value):
            got = "missing" if twin is None else \
                f"{TensorProto.DataType.Name(twin.type.tensor_type.elem_type)} {_dims(twin)}"
            raise QuantizationError(f"graph I/O {value.name!r} of the INT8 graph is {got}",
                                    f"FLOAT {_dims(value)} as in the FP32 graph", "report the model")
