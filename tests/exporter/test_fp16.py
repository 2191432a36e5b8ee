"""FP16 ONNX conversion: types, dynamic axes, parity search, atomic writes."""

from __future__ import annotations

import os
import sys

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from unetrt.errors import ExportError, MissingDependencyError, ParityError
from unetrt.exporter.fp16 import search
from unetrt.exporter.fp16 import Fp16Result, convert_fp16

sys.path.insert(0, os.path.dirname(__file__))
from tiny_unet_onnx import eager, overflow_model, tiny_unet  # noqa: E402

RNG = np.random.default_rng(1)
FEEDS = [{"input": RNG.standard_normal((1, 3, 45, 37), dtype=np.float32)},
         {"input": RNG.standard_normal((2, 3, 29, 51), dtype=np.float32)}]
FEED_SIZES = {45, 37, 29, 51}
OCC = "onnxconverter-common"  # pinned: reasons and quirks below are this converter's, not ModelOpt's


@pytest.fixture(scope="session")
def unet(tmp_path_factory):
    return tiny_unet(tmp_path_factory)


@pytest.fixture(scope="session")
def unet_bilinear(tmp_path_factory):
    return tiny_unet(tmp_path_factory, bilinear=True)


@pytest.fixture(scope="session")
def fp16_unet(unet, tmp_path_factory):
    path, model = unet
    out = tmp_path_factory.mktemp("fp16") / "model_fp16.onnx"
    refs = [{"logits": eager(model, f["input"])} for f in FEEDS]
    return convert_fp16(path, out, feeds=FEEDS, references=refs, converter=OCC), refs


def _types(model):
    return search.tensor_types(model)


def _io_types(model):
    return [v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]]


def test_weights_fp16_io_fp32_by_default(fp16_unet):
    result, _ = fp16_unet
    model = onnx.load(result.path)
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")}
    dtypes = {t.name: t.data_type for t in model.graph.initializer}
    assert conv_weights and all(dtypes[w] == TensorProto.FLOAT16 for w in conv_weights)
    assert _io_types(model) == [TensorProto.FLOAT, TensorProto.FLOAT]
    conv_out = [o for n in model.graph.node if n.op_type == "Conv" for o in n.output]
    assert all(_types(model)[o] == TensorProto.FLOAT16 for o in conv_out)
    assert result.keep_io_types and result.kept_fp32 == []
    assert result.converter.startswith("onnxconverter-common ")


def test_keep_io_types_false_gives_fp16_io(unet, tmp_path):
    path, _ = unet
    result = convert_fp16(path, tmp_path / "io16.onnx", feeds=FEEDS[:1], keep_io_types=False, converter=OCC)
    model = onnx.load(result.path)
    assert _io_types(model) == [TensorProto.FLOAT16, TensorProto.FLOAT16]
    out = search.run_ort(model, {"input": FEEDS[0]["input"].astype(np.float16)})["logits"]
    assert out.dtype == np.float16 and out.shape == (1, 3, 45, 37)
    assert result.parity[0]["passed"] and not result.keep_io_types


def test_dynamic_axes_stay_symbolic(fp16_unet):
    model = onnx.load(fp16_unet[0].path)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        assert [d.dim_param != "" for d in dims] == [True, False, True, True], value.name
    baked = [v.name for v in model.graph.value_info
             if any(d.dim_value in FEED_SIZES for d in v.type.tensor_type.shape.dim)]
    assert baked == []


def test_parity_within_bars_on_feeds_and_other_sizes(fp16_unet, unet):
    result, refs = fp16_unet
    assert [(p["feed"], p["output"]) for p in result.parity] == [(0, "logits"), (1, "logits")]
    for entry in result.parity:
        assert entry["passed"] and entry["argmax_agreement"] >= 0.995
        assert 0 < entry["max_abs"] <= entry["atol"]
        assert entry["ort_cpu_max_abs"] <= entry["atol"]
    emulated = search.emulate_storage(onnx.load(result.path))
    x = RNG.standard_normal((1, 3, 64, 24), dtype=np.float32)  # a size not in the feeds
    ref = eager(unet[1], x)
    out = search.run_ort(emulated, {"input": x}, optimize=False)["logits"]
    assert np.abs(out - ref).max() <= 1e-2 * max(1.0, np.abs(ref).max())
    assert np.mean(out.argmax(1) == ref.argmax(1)) >= 0.995


def test_node_names_unique_and_metadata(fp16_unet):
    model = onnx.load(fp16_unet[0].path)
    names = [n.name for n in model.graph.node]
    outputs = [o for n in model.graph.node for o in n.output]
    assert all(names) and len(set(names)) == len(names)
    assert len(set(outputs)) == len(outputs)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["precision"] == "fp16" and props["unetrt.model"] == "tiny_unet"
    assert fp16_unet[0].node_count == len(names)
    onnx.checker.check_model(model, full_check=True)


@pytest.mark.slow
def test_resize_kept_fp32_by_converter_defaults(unet_bilinear, tmp_path):
    path, _ = unet_bilinear
    result = convert_fp16(path, tmp_path / "bil.onnx", feeds=FEEDS, converter=OCC)
    resize = [k for k in result.kept_fp32 if k["op"] == "Resize"]
    assert len(resize) == 2 and {k["reason"] for k in resize} == {"converter default block list"}
    assert all(p["passed"] for p in result.parity)


def test_search_keeps_overflowing_nodes_fp32(tmp_path):
    src = overflow_model(tmp_path / "overflow.onnx")
    feeds = [{"input": RNG.standard_normal((1, 3, 16, 16), dtype=np.float32)}]
    messages = []
    result = convert_fp16(src, tmp_path / "overflow16.onnx", feeds=feeds, progress=messages.append,
                          converter=OCC)
    kept = {k["node"]: k for k in result.kept_fp32}
    assert set(kept) == {"scale_up", "relu", "scale_down"}
    assert all(k["reason"].startswith("parity search: non-finite output") for k in kept.values())
    assert result.parity[0]["passed"] and np.isfinite(result.parity[0]["max_abs"])
    model = onnx.load(result.path)
    types = _types(model)
    by_name = {n.name: n for n in model.graph.node}
    assert types[by_name["conv_out"].output[0]] == TensorProto.FLOAT16
    assert types[by_name["relu"].output[0]] == TensorProto.FLOAT
    assert any("fail" in m for m in messages) and any("pass" in m for m in messages)


def test_absurd_tolerance_raises_and_writes_nothing(unet, tmp_path):
    out = tmp_path / "never.onnx"
    with pytest.raises(ParityError) as info:
        convert_fp16(unet[0], out, feeds=FEEDS[:1], max_abs_tol=1e-12, converter=OCC)
    message = str(info.value)
    assert "output 'logits'" in message and "feed 0" in message and "\n" not in message
    assert os.listdir(tmp_path) == []


def test_wrong_references_raise_parity_error(unet, tmp_path):
    refs = [{"logits": np.zeros((1, 3, 45, 37), np.float32) + 10}]
    with pytest.raises(ParityError, match="every float node FP32"):
        convert_fp16(unet[0], tmp_path / "x.onnx", feeds=FEEDS[:1], references=refs, converter=OCC)


def test_block_ops_recorded(unet, tmp_path):
    result = convert_fp16(unet[0], tmp_path / "b.onnx", feeds=FEEDS[:1], block_ops=["Relu"], converter=OCC)
    assert {k["op"] for k in result.kept_fp32} == {"Relu"}
    assert {k["reason"] for k in result.kept_fp32} == {"block_ops"}
    assert isinstance(result.to_dict()["kept_fp32"], list) and isinstance(result, Fp16Result)


def _round_trips(model) -> int:
    """Number of Cast(to FP16) -> Cast(to FP32) pairs: FP32 values needlessly rounded to FP16."""
    producer = {o: n for n in model.graph.node for o in n.output}

    def to(node):
        return next(a.i for a in node.attribute if a.name == "to")

    return sum(1 for n in model.graph.node if n.op_type == "Cast" and to(n) == TensorProto.FLOAT
               and producer.get(n.input[0]) is not None and producer[n.input[0]].op_type == "Cast"
               and to(producer[n.input[0]]) == TensorProto.FLOAT16)


def test_blocked_nodes_really_stay_fp32(unet, tmp_path):
    """onnxconverter-common 1.16 quirks: FP16 weights for blocked nodes, FP16 output, rounded skips."""
    blocked = ["Conv", "Relu", "MaxPool"]  # Relu outputs feed MaxPool (FP32) and the skip Concat (FP16)
    result = convert_fp16(unet[0], tmp_path / "c.onnx", feeds=FEEDS[:1], block_ops=blocked, converter=OCC)
    model = onnx.load(result.path)
    dtypes = {t.name: t.data_type for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(dtypes[i] == TensorProto.FLOAT for n in convs for i in n.input[1:])  # not via Casts
    assert _io_types(model) == [TensorProto.FLOAT, TensorProto.FLOAT]
    assert _round_trips(model) == 0
    assert {k["op"] for k in result.kept_fp32} == set(blocked)
    types = _types(model)
    assert all(types[n.output[0]] == TensorProto.FLOAT16 for n in model.graph.node if n.op_type == "ConvTranspose")


def test_everything_blocked_is_not_fp16(unet, tmp_path):
    ops = ["Conv", "ConvTranspose", "Relu", "MaxPool", "Pad", "Concat"]
    with pytest.raises(ParityError, match="no float node .* runs in FP16 .*block_ops"):
        convert_fp16(unet[0], tmp_path / "all.onnx", feeds=FEEDS[:1], block_ops=ops, converter=OCC)
    assert not (tmp_path / "all.onnx").exists()


def test_atomic_write_leaves_no_temp_files(unet, tmp_path, monkeypatch):
    out = tmp_path / "atomic.onnx"
    out.write_bytes(b"old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        convert_fp16(unet[0], out, feeds=FEEDS[:1], converter=OCC)
    assert os.listdir(tmp_path) == ["atomic.onnx"] and out.read_bytes() == b"old"
    monkeypatch.undo()
    convert_fp16(unet[0], out, feeds=FEEDS[:1], converter=OCC)
    assert os.listdir(tmp_path) == ["atomic.onnx"] and onnx.load(str(out)).graph.node


def test_bad_inputs_raise_export_error(unet, fp16_unet, tmp_path):
    with pytest.raises(ExportError, match="calibration feed 0 has inputs"):
        convert_fp16(unet[0], tmp_path / "x.onnx", feeds=[{"image": FEEDS[0]["input"]}], converter=OCC)
    with pytest.raises(ExportError, match="float32 arrays"):
        convert_fp16(unet[0], tmp_path / "x.onnx", feeds=[{"input": FEEDS[0]["input"].astype(np.float64)}],
                     converter=OCC)
    with pytest.raises(ExportError, match="no calibration feeds"):
        convert_fp16(unet[0], tmp_path / "x.onnx", feeds=[], converter=OCC)
    with pytest.raises(ExportError, match="already holds FP16"):
        convert_fp16(fp16_unet[0].path, tmp_path / "x.onnx", feeds=FEEDS[:1], converter=OCC)
    with pytest.raises(ExportError, match="unknown FP16 converter"):
        convert_fp16(unet[0], tmp_path / "x.onnx", feeds=FEEDS[:1], converter="magic")
    assert not (tmp_path / "x.onnx").exists()


def test_converter_choice_without_modelopt(unet, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "modelopt", None)  # `import modelopt...` raises ImportError
    with pytest.raises(MissingDependencyError, match="nvidia-modelopt"):
        convert_fp16(unet[0], tmp_path / "x.onnx", feeds=FEEDS[:1], converter="modelopt")
    result = convert_fp16(unet[0], tmp_path / "auto.onnx", feeds=FEEDS[:1])
    assert result.converter.startswith("onnxconverter-common ")
    assert {p.key: p.value for p in onnx.load(result.path).metadata_props}["fp16_converter"] == result.converter


def test_emulation_rounds_activations_that_ort_cpu_keeps_fp32(tmp_path):
    """y = x * 3 + 0: ORT CPU keeps x*3 in FP32; the emulation rounds x and x*3 to FP16."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "three"], ["t"], name="mul"),
         helper.make_node("Add", ["t", "zero"], ["y"], name="add")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])],
        [numpy_helper.from_array(np.array(3.0, np.float32), "three"),
         numpy_helper.from_array(np.array(0.0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    from onnxconverter_common import float16
    half = float16.convert_float_to_float16(model, keep_io_types=True)
    x = np.linspace(-1.3, 1.7, 1001, dtype=np.float32)
    expected = (x.astype(np.float16) * np.float16(3)).astype(np.float32)
    emulated = search.run_ort(search.emulate_storage(half), {"x": x}, optimize=False)["y"]
    np.testing.assert_array_equal(emulated, expected)
    assert np.abs(emulated - x * 3).max() > 1e-4


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(8, 40), w=st.integers(8, 40), n=st.integers(1, 2))
def test_fp16_graph_tracks_eager_over_sizes(fp16_unet, unet, h, w, n):
    emulated = search.emulate_storage(onnx.load(fp16_unet[0].path))
    x = np.random.default_rng(h * 100 + w).standard_normal((n, 3, h, w), dtype=np.float32)
    ref = eager(unet[1], x)
    out = search.run_ort(emulated, {"input": x}, optimize=False)["logits"]
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() <= 1e-2 * max(1.0, np.abs(ref).max())


def test_name_nodes_keeps_unique_names_and_never_reuses_one():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"], name="r"),
             helper.make_node("Relu", ["b"], ["c"], name="r"), helper.make_node("Relu", ["c"], ["d"], name="Relu"),
             helper.make_node("Relu", ["d"], ["y"], name="r_1")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    search.name_nodes(graph)
    names = [n.name for n in graph.node]
    assert names[1] == "r" and names[3] == "Relu" and names[4] == "r_1"  # unique ones kept
    assert names[0].startswith("Relu_") and names[2].startswith("r_") and len(set(names)) == 5
    assert [(list(n.input), list(n.output)) for n in graph.node] == [
        (["x"], ["a"]), (["a"], ["b"]), (["b"], ["c"]), (["c"], ["d"]), (["d"], ["y"])]
    before = graph.SerializeToString()
    search.name_nodes(graph)  # already unique: untouched
    assert graph.SerializeToString() == before
