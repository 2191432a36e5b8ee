"""The labels form of an export (``model_labels.onnx``): the FP32 graph with the post-processing appended.

The logits output ``NxKxHxW`` is replaced by ``labels`` ``Nx1xHxW`` uint8: ``ArgMax`` over the classes
(first maximum on ties, as numpy's argmax) for K > 1, or for one class ``GreaterOrEqual`` with
:func:`~unetrt.artifacts.label_rules.sigmoid_cut` — the float32 logit at which milesial's ``sigmoid > threshold``
turns true — so no sigmoid runs and the labels equal the numpy post-processing bit for bit. Nodes are
appended to the exported graph with ``onnx.helper`` (no re-export); ``Cast`` to uint8 ends it, so a runtime
hands back one byte per pixel instead of four per class (unetrt builds no engine of it yet).

The labels are checked against the numpy post-processing of the logits graph on the verification sizes
(ONNX Runtime CPU: numpy's argmax, or :func:`~unetrt.artifacts.label_rules.sigmoid_above`, as
``unetrt.runtime.masks`` does at the network's size); any mismatch fails the export.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..artifacts import names
from ..artifacts.label_rules import sigmoid_above, sigmoid_cut
from ..artifacts.sections import LabelsForm
from ..errors import ExportError, ParityError
from ..fileio import sha256_file
from . import onnx_io

__all__ = ["labels_graph", "labels_stage"]

_MAX_UINT8_CLASSES = 256


def labels_graph(model: onnx.ModelProto, classes: int, mask_threshold: float = 0.5) -> tuple[onnx.ModelProto, str]:
    """A copy of ``model`` whose only output is ``labels`` (``Nx1xHxW`` uint8); returns it and the op used.

    Args:
        model: The exported FP32 graph (its first output is the logits, ``NxKxHxW``).
        classes: K.
        mask_threshold: Sigmoid threshold of a one-class model.

    Raises:
        ExportError: More than 256 classes (uint8), or a first output that is not rank-4/5 logits.
    """
    if classes > _MAX_UINT8_CLASSES:
        raise ExportError(f"--labels-output with {classes} classes", f"at most {_MAX_UINT8_CLASSES} classes "
                          "(uint8 labels)", "drop --labels-output; post-process the logits")
    out = copy.deepcopy(model)
    graph = out.graph
    logits = graph.output[0]
    dims = list(logits.type.tensor_type.shape.dim)
    if len(dims) not in (4, 5):
        raise ExportError(f"first output {logits.name!r} has rank {len(dims)}", "NxKxHxW logits",
                          "export a segmentation model")
    taken = {n for node in graph.node for n in node.output} | {i.name for i in graph.input}
    if names.LABELS in taken:
        raise ExportError(f"the graph already has a tensor named {names.LABELS!r}", "a free output name",
                          "rename that tensor in the model")
    scores = f"{names.LABELS}_index"
    if classes > 1:
        op = "ArgMax"
        nodes = [helper.make_node("ArgMax", [logits.name], [scores], name="labels_argmax", axis=1, keepdims=1,
                                  select_last_index=0)]
    else:
        op = "GreaterOrEqual"
        cut = sigmoid_cut(float(mask_threshold))
        value = np.array(math.inf if cut is None else cut, np.float32)
        cut_name = f"{names.LABELS}_logit_cut"
        graph.initializer.append(onnx.numpy_helper.from_array(value, cut_name))
        # no logit passes a threshold >= 1: Greater than +inf is never true
        nodes = [helper.make_node("Greater" if cut is None else "GreaterOrEqual", [logits.name, cut_name], [scores],
                                  name="labels_threshold")]
    nodes.append(helper.make_node("Cast", [scores], [names.LABELS], name="labels_cast", to=TensorProto.UINT8))
    graph.node.extend(nodes)
    shape = [d.dim_param or d.dim_value or None for d in dims]
    shape[1] = 1
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(names.LABELS, TensorProto.UINT8, shape))
    onnx_io.set_metadata(out, {"unetrt.labels": json.dumps({"op": op, "classes": classes,
                                                             "mask_threshold": None if classes > 1 else mask_threshold})})
    onnx.checker.check_model(out)
    return out, op


def labels_stage(onnx_path: Path, folder: Path, classes: int, sizes: Sequence, in_ch: int,
                 mask_threshold: float = 0.5) -> LabelsForm:
    """Write ``model_labels.onnx`` beside ``onnx_path`` and check it against the logits graph.

    Raises:
        ParityError: A label differs from the numpy post-processing of the logits graph's output.
    """
    model = onnx.load(str(onnx_path))
    proto, op = labels_graph(model, classes, mask_threshold)
    path = folder / names.ONNX_LABELS
    onnx_io.save_onnx(proto, path)
    check = _check(onnx_path, path, sizes, in_ch, mask_threshold)
    if check["mismatches"]:
        raise ParityError(f"{names.ONNX_LABELS}: {check['mismatches']} of {check['pixels']} labels differ from the "
                          "logits graph's post-processing", "identical labels",
                          "report it with the model; export without --labels-output meanwhile")
    return LabelsForm(path=names.ONNX_LABELS, sha256=sha256_file(path), op=op, classes=classes,
                      mask_threshold=None if classes > 1 else float(mask_threshold), check=check)


def _check(logits_path: Path, labels_path: Path, sizes: Sequence, in_ch: int, mask_threshold: float) -> dict:
    """Run both graphs on random inputs of the sweep sizes (ONNX Runtime CPU); count differing labels."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    sessions = [ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                for p in (logits_path, labels_path)]
    rng = np.random.default_rng(0)
    pixels = mismatches = 0
    checked = []
    for size in list(sizes)[:3]:
        spatial = [d for d in (size.depth, size.height, size.width) if d is not None]
        if len(spatial) != 2:
            continue  # volumes: the labels graph is written; the 2-D post-processing is not theirs to compare
        x = rng.standard_normal((size.batch, in_ch, *spatial)).astype(np.float32)
        logits = sessions[0].run(None, {names.INPUT: x})[0]
        labels = sessions[1].run(None, {names.INPUT: x})[0]
        ref = np.argmax(logits, axis=1) if logits.shape[1] > 1 else sigmoid_above(logits[:, 0], mask_threshold)
        mismatches += int(np.count_nonzero(labels[:, 0].astype(np.int64) != ref.astype(np.int64)))
        pixels += ref.size
        checked.append([size.batch, *spatial])
    return {"sizes": checked, "pixels": pixels, "mismatches": mismatches}
