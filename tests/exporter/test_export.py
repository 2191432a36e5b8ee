"""The export chain end to end: every variant, alignment, fallback, metadata and bad input."""


import numpy as np
import onnx
import pytest
import torch

from unetrt.errors import AlignmentError, CheckpointError, OutputError, ParityError
from unetrt.exporter import ExportConfig, export
from unetrt.exporter.onnx_io import strip_noop_pads
from unetrt.exporter.verify import make_session, sweep_sizes
from unetrt.models import create_model

TINY = {"width": 4}


def _dims(vi):
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def _names(path):
    return sorted(p.name for p in path.iterdir())


@pytest.mark.slow
def test_milesial_onnx_matches_eager_at_unseen_odd_sizes(tmp_path):
    torch.manual_seed(3)
    model = create_model("milesial", width=4)
    torch.manual_seed(3)  # same init for the exported copy
    export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path), verify=False))
    sess = make_session(str(tmp_path / "model.onnx"))
    for shape in [(3, 3, 97, 61), (1, 3, 16, 16), (2, 3, 129, 18)]:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        got = sess.run(None, {"input": x})[0]
        ref = model(torch.from_numpy(x)).detach().numpy()
        assert got.shape == ref.shape == (shape[0], 2, *shape[2:])
        np.testing.assert_allclose(got, ref, atol=1e-5)


@pytest.mark.slow
def test_aligned_milesial_has_no_pad_and_tells_the_runtime(tmp_path):
    m = export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path), align=16)).manifest.to_dict()
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert "Pad" not in {n.op_type for n in proto.graph.node}
    assert m["input"]["alignment"] == 16 and m["input"]["pad_to_alignment"] is True
    assert all(r["input_shape"][2] % 16 == 0 and r["input_shape"][3] % 16 == 0 for r in m["verification"]["sizes"])


def test_strip_noop_pads_keeps_real_pads():
    from onnx import TensorProto, helper

    zeros = helper.make_tensor("zeros", TensorProto.INT64, [8], [0] * 8)
    ones = helper.make_tensor("ones", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    nodes = [helper.make_node("Pad", ["x", "zeros"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Pad", ["b", "ones"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [zeros, ones])
    model = helper.make_model(graph)
    assert strip_noop_pads(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Relu", "Pad"]
    assert model.graph.node[0].input[0] == "x"
    assert [t.name for t in model.graph.initializer] == ["ones"]


def test_strip_noop_pads_reads_constant_nodes_and_leaves_graph_outputs():
    from onnx import TensorProto, helper

    zeros = helper.make_tensor("z", TensorProto.INT64, [4], [0] * 4)
    nodes = [helper.make_node("Constant", [], ["pads"], value=zeros), helper.make_node("Pad", ["x", "pads"], ["a"]),
             helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Pad", ["b", "pads"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    assert strip_noop_pads(model) == 1  # the last Pad produces the graph output: kept
    assert [n.op_type for n in model.graph.node] == ["Constant", "Relu", "Pad"]
    assert model.graph.node[1].input[0] == "x" and model.graph.output[0].name == "y"
    onnx.checker.check_model(model)
    x = np.arange(4, dtype=np.float32).reshape(2, 2) - 2
    got = make_session_from(model).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, np.maximum(x, 0))


def make_session_from(model):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.slow
def test_no_simplify_still_strips_noop_pads_once(tmp_path, monkeypatch):
    import unetrt.exporter.onnx_io as onnx_io

    calls = []
    real = onnx_io.strip_noop_pads
    monkeypatch.setattr(onnx_io, "strip_noop_pads", lambda m: calls.append(1) or real(m))
    m = export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path / "a"), align=16,
                            simplify=False, verify=False)).manifest.to_dict()
    assert calls == [1] and m["onnx"]["pads_removed"] == 4 and "Pad" not in m["onnx"]["op_counts"]
    m = export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path / "b"), align=16,
                            verify=False)).manifest.to_dict()
    assert calls == [1, 1] and m["onnx"]["pads_removed"] == 4 and m["onnx"]["simplify"]["applied"]


@pytest.mark.slow
def test_branchy_third_party_model_exports_aligned_never_wrong(tmp_path):
    m = export(ExportConfig(factory="tests.fixtures.thirdparty:branchy", model_kwargs={"width": 2},
                            output_dir=str(tmp_path))).manifest.to_dict()
    assert m["input"]["alignment"] == 16
    assert any("branches on input sizes" in n for n in m["export"]["notes"])
    assert m["model"]["factory"] == "tests.fixtures.thirdparty:branchy"
    with pytest.raises(AlignmentError, match="--align 16"):
        export(ExportConfig(factory="tests.fixtures.thirdparty:branchy", model_kwargs={"width": 2},
                            output_dir=str(tmp_path / "a1"), align=1))
    assert not (tmp_path / "a1").exists()


@pytest.mark.slow
def test_torchscript_fallback_is_guarded_by_a_wider_sweep(tmp_path):
    m = export(ExportConfig(factory="tests.fixtures.thirdparty:item_scaled", output_dir=str(tmp_path))).manifest.to_dict()
    assert m["export"]["exporter"] == "torchscript"
    rows = m["verification"]["sizes"]
    assert {r["input_shape"][2] % 32 for r in rows} == set(range(32))
    assert all(r["passed"] for r in rows)


def test_negative_pad_differences_are_exact():
    """torch lowers size floordiv to truncating ONNX Div; a negative diff must still crop like eager."""
    sizes = sweep_sizes(1, 33, residues=4)
    assert {s.height % 4 for s in sizes} >= {0, 1, 2, 3}


@pytest.mark.slow
def test_static_export_fixes_every_dim(tmp_path):
    m = export(ExportConfig(arch="prelu", model_kwargs=TINY, output_dir=str(tmp_path), static_shape=(2, 32, 48))).manifest.to_dict()
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert _dims(proto.graph.input[0]) == [2, 1, 32, 48]
    dynamic = {k: v for k, v in m["input"]["dynamic"].items() if v is not None}  # depth: volumetric only
    assert dynamic == {"batch": False, "height": False, "width": False}
    assert [r["input_shape"] for r in m["verification"]["sizes"]] == [[2, 1, 32, 48]]


def test_static_shape_not_admissible(tmp_path):
    with pytest.raises(AlignmentError, match="multiples of 16"):
        export(ExportConfig(arch="plain", model_kwargs=TINY, output_dir=str(tmp_path / "o"), static_shape=(1, 40, 40)))
    with pytest.raises(AlignmentError, match="H and W >= 188"):
        export(ExportConfig(arch="paper", model_kwargs=TINY, output_dir=str(tmp_path / "o"), static_shape=(1, 100, 100)))
    assert not (tmp_path / "o").exists()


def test_align_incompatible_with_variant(tmp_path):
    with pytest.raises(AlignmentError, match="--align 8 is incompatible with plain"):
        export(ExportConfig(arch="plain", model_kwargs=TINY, output_dir=str(tmp_path / "o"), align=8))


@pytest.mark.slow
def test_parity_failure_writes_nothing(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(ParityError) as err:
        export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(out), atol_factor=1e-15))
    assert "parity failed" in str(err.value)
    assert "max_abs" in err.value.table and "NO" in err.value.table
    assert not out.exists()
    assert not any(p.name.startswith(".o.staging") for p in tmp_path.iterdir())


@pytest.mark.slow
def test_non_empty_output_needs_force(tmp_path):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(OutputError, match="not empty.*--force"):
        export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path)))
    export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path), force=True, verify=False))
    assert (tmp_path / "keep.txt").read_text() == "user data"
    assert (tmp_path / "model.onnx").exists()


def test_output_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(f)))


@pytest.mark.slow
def test_milesial_checkpoint_with_mask_values(tmp_path):
    model = create_model("milesial", width=4, num_classes=3)
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_(0, 0.5)
    state = model.state_dict()
    state["mask_values"] = [0, 127, 255]
    ckpt = tmp_path / "checkpoint_epoch5.pth"
    torch.save(state, ckpt)
    m = export(ExportConfig(arch="milesial", model_kwargs={"width": 4, "num_classes": 3}, checkpoint=str(ckpt),
                            output_dir=str(tmp_path / "o"))).manifest.to_dict()
    assert m["mask_values"] == [0, 127, 255]
    assert m["model"]["checkpoint"]["sha256"]
    assert m["output"]["classes"] == 3
    sess = make_session(str(tmp_path / "o" / "model.onnx"))
    x = np.random.default_rng(0).standard_normal((1, 3, 45, 37)).astype(np.float32)
    ref = model.eval()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], ref, atol=1e-4 * max(1, np.abs(ref).max()))


def test_checkpoint_mismatch_names_the_variant(tmp_path):
    ckpt = tmp_path / "prelu.pth"
    torch.save(create_model("prelu", width=4).state_dict(), ckpt)
    with pytest.raises(CheckpointError, match="prelu"):
        export(ExportConfig(arch="milesial", model_kwargs=TINY, checkpoint=str(ckpt), output_dir=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


def test_export_config_flat_keywords_set_one_field_of_a_group():
    from unetrt.exporter import EngineOptions, Fp16Options, Int8Options, VerifyOptions

    given = EngineOptions(flavour="tensorrt-rtx")
    c = ExportConfig(arch="milesial", fp16=True, fp16_io=True, verify=False, atol_factor=0.5, int8_cpu=True,
                     calib_count=4, engine=False, engine_options=given)
    assert c.fp16_options == Fp16Options(enabled=True, io=True)
    assert c.verify_options == VerifyOptions(enabled=False, atol_factor=0.5)
    assert c.int8_options == Int8Options(cpu=True, calib_count=4) and c.int8_options.wanted
    assert c.engine_options == EngineOptions(build=False, flavour="tensorrt-rtx")
    assert given.build is None  # the caller's group is not modified
    assert ExportConfig().engine_options is not ExportConfig().engine_options
    with pytest.raises(TypeError, match="unexpected keyword argument .fp32."):
        ExportConfig(arch="milesial", fp32=True)


def test_parity_table_is_plain_text_with_the_failure_reason():
    from unetrt.artifacts.sections import ParityRow
    from unetrt.exporter.verify import _failed_row, format_table

    metrics = dict(max_abs=1e-5, mean_abs=1e-6, p99_abs=1e-5, max_rel=1e-3, rel_to_range=2e-6, argmax_agreement=1.0,
                   argmax_agreement_all=1.0, decisive_fraction=1.0, mean_iou=1.0, dice=1.0, atol=1e-4)
    rows = [ParityRow(input_shape=[1, 3, 32, 32], output_shape=[1, 2, 32, 32], passed=True, **metrics),
            _failed_row([1, 3, 33, 33], None, "onnxruntime failed")]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["input", "output", "max_abs", "mean_abs", "rel_range", "argmax", "ok", "reason"]
    assert lines[2].split() == ["1x3x32x32", "1x2x32x32", "1e-05", "1e-06", "2e-06", "100.00%", "yes"]
    assert lines[3].split() == ["1x3x33x33", "-", "-", "-", "-", "-", "NO", "onnxruntime", "failed"]
    assert "\x1b[" not in format_table(rows)
