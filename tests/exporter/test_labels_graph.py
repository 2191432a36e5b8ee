"""The labels form (``unet-export --labels-output``): ArgMax / threshold appended to the FP32 graph, uint8 labels
out, recorded in the manifest, and masks byte-identical to post-processing the logits when the predictor uses it."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image

from unetrt.artifacts import names
from unetrt.artifacts.manifest import Manifest
from unetrt.artifacts.refs import ArtifactRef
from unetrt.assets import demo_checkpoint
from unetrt.errors import ExportError, InputError
from unetrt.exporter import ExportConfig, export
from unetrt.exporter.labels import labels_graph, labels_stage
from unetrt.models import load_checkpoint
from unetrt.runtime import load
from unetrt.runtime.segment import Segmenter
from unetrt.runtime.stream import predict_many

LABELS = ArtifactRef("onnx", "fp32", "labels")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo checkpoint (3 classes, trained weights) exported with the labels form."""
    out = tmp_path_factory.mktemp("labels") / "demo"
    export(ExportConfig(arch="milesial", model_kwargs={"num_classes": 3, "width": 8}, checkpoint=str(demo_checkpoint()),
                        output_dir=str(out), verify=False, engine=False, labels_output=True))
    return out


@pytest.fixture(scope="module")
def one_class(tmp_path_factory):
    """A one-class random-init model through the CLI (logits near 0: the threshold's edge is exercised)."""
    from unetrt.cli.export import export_cmd

    out = tmp_path_factory.mktemp("labels") / "one"
    result = CliRunner().invoke(export_cmd, ["--width", "4", "--classes", "1", "--no-verify", "--no-engine",
                                             "--labels-output", "--labels-threshold", "0.5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("label_images")
    rng = np.random.default_rng(1)
    paths = []
    for i, (h, w) in enumerate([(64, 64), (97, 143), (64, 64), (50, 70), (97, 143)]):
        p = folder / f"im_{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


@pytest.mark.slow
def test_labels_artifact_named_recorded_and_uint8(demo):
    manifest = Manifest.read(demo)
    form = manifest.entry(LABELS)
    assert LABELS.file_name == names.ONNX_LABELS == form.path == "model_labels.onnx"
    assert form.op == "ArgMax" and form.classes == 3 and form.mask_threshold is None and form.dtype == "uint8"
    assert form.check["mismatches"] == 0 and form.check["pixels"] > 1000
    assert manifest.sha256_of(names.ONNX_LABELS) == form.sha256
    assert names.ONNX_LABELS in {a.path for a in manifest.artifacts}
    model = onnx.load(str(demo / names.ONNX_LABELS))
    assert [n.op_type for n in model.graph.node[-2:]] == ["ArgMax", "Cast"]
    (out,) = model.graph.output
    assert out.name == "labels" and out.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert out.type.tensor_type.shape.dim[1].dim_value == 1
    assert json.loads({p.key: p.value for p in model.metadata_props}["unetrt.labels"])["op"] == "ArgMax"
    # the logits graph is untouched: same node count as recorded
    assert len(onnx.load(str(demo / names.ONNX)).graph.node) == manifest.onnx.nodes
    with load(demo / names.ONNX_LABELS) as runner:
        got = runner.infer({"input": np.zeros((2, 3, 32, 48), np.float32)})["labels"]
    assert got.dtype == np.uint8 and got.shape == (2, 1, 32, 48)


@pytest.mark.slow
def test_stream_with_labels_graph_writes_byte_identical_masks(demo, images, tmp_path):
    values = load_checkpoint(demo_checkpoint())[1]["mask_values"]
    a, b = tmp_path / "logits", tmp_path / "labels"
    with load(demo, backend="ort") as logits, load(demo / names.ONNX_LABELS) as labels:
        ref = predict_many(logits, images, [a / f"{p.stem}.png" for p in images], batch=2, mask_values=values,
                           keep_arrays=True)
        got = predict_many(logits, images, [b / f"{p.stem}.png" for p in images], batch=2, mask_values=values,
                           keep_arrays=True, labels=labels)
        half = predict_many(logits, images[:2], None, scale=0.5, keep_arrays=True, labels=labels)
    assert all(r.mode.startswith("labels") for r in got) and not any(r.mode.startswith("labels") for r in ref)
    assert any("batched" in r.mode for r in got)
    for r, g, p in zip(ref, got, images):
        assert g.status == "ok" and np.array_equal(g.mask, r.mask) and g.class_pixels == r.class_pixels
        assert (b / f"{p.stem}.png").read_bytes() == (a / f"{p.stem}.png").read_bytes()
    assert not any(r.mode.startswith("labels") for r in half)  # --scale 0.5: resized logits, not labels


@pytest.mark.slow
def test_one_class_labels_graph_thresholds_like_the_sigmoid(one_class, images, tmp_path):
    manifest = Manifest.read(one_class)
    form = manifest.entry(LABELS)
    assert form.op == "GreaterOrEqual" and form.classes == 1 and form.mask_threshold == 0.5
    assert form.check["mismatches"] == 0
    decoded = [np.asarray(Image.open(p).convert("RGB")) for p in images]
    with load(one_class, backend="ort") as logits:
        # a threshold that splits these images' pixels (random weights give logits of one sign)
        probs = np.concatenate([1 / (1 + np.exp(-logits.infer({"input": Segmenter(logits).prepare(im).x})["logits"]
                                                .ravel())) for im in decoded])
        threshold = float(np.median(probs))
        manifest.onnx.labels = labels_stage(one_class / names.ONNX, tmp_path, 1, [], 3, threshold)
        with load(tmp_path / names.ONNX_LABELS, manifest=manifest, verify=False) as labels:
            ref = Segmenter(logits, mask_threshold=threshold)(decoded)
            got = Segmenter(logits, mask_threshold=threshold, labels=labels)(decoded)
            with pytest.raises(InputError, match=f"built for --mask-threshold {threshold:g}, asked for 0.5"):
                Segmenter(logits, labels=labels)
    for r, g in zip(ref, got):
        assert g.mode.startswith("labels") and np.array_equal(g.mask, r.mask)
    assert 0 < sum(int(r.mask.sum()) for r in ref) < sum(r.mask.size for r in ref)  # both classes present


@pytest.mark.slow
def test_labels_runner_alone_refuses_what_needs_the_logits(demo, images):
    img = np.asarray(Image.open(images[1]).convert("RGB"))
    with load(demo / names.ONNX_LABELS) as labels:
        seg = Segmenter(labels)
        assert seg.labels_only and seg.classes == 3
        assert seg([img])[0].mask.shape == img.shape[:2]
        with pytest.raises(InputError, match="needs a resize or tiling.*run the logits graph"):
            Segmenter(labels, scale=0.5)([img])
    with load(demo / names.ONNX_LABELS, manifest=None, verify=False) as bare:
        bare.manifest = None
        with pytest.raises(InputError, match="no manifest labels section"):
            Segmenter(bare)


def _tiny_logits_graph(classes: int) -> onnx.ModelProto:
    from onnx import TensorProto, helper

    w = onnx.numpy_helper.from_array(np.ones((classes, 3, 1, 1), np.float32), "w")
    node = helper.make_node("Conv", ["input", "w"], ["logits"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes, "H", "W"])],
                              [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_labels_graph_refuses_more_than_256_classes():
    with pytest.raises(ExportError, match="at most 256 classes"):
        labels_graph(_tiny_logits_graph(300), 300)


def test_labels_graph_with_threshold_one_is_never_true():
    import onnxruntime as ort

    proto, op = labels_graph(_tiny_logits_graph(1), 1, mask_threshold=1.0)
    assert op == "GreaterOrEqual" and proto.graph.node[-2].op_type == "Greater"
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.full((1, 3, 4, 4), 1e6, np.float32)
    assert not session.run(None, {"input": x})[0].any()
    proto, _ = labels_graph(_tiny_logits_graph(1), 1, mask_threshold=0.5)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, 2, 2), np.float32)
    x[0, 0, 0, 0] = 1e-9  # sigmoid(3e-9) rounds to 0.5 in float32: not above the threshold
    x[0, 0, 1, 1] = 1e-3
    assert session.run(None, {"input": x})[0][0, 0].tolist() == [[0, 0], [0, 1]]


@pytest.mark.slow
def test_predict_cli_labels_graph_same_files_and_refusals(demo, one_class, images, tmp_path):
    from unetrt.cli.predict import predict_cmd

    def run(out, *extra):
        return CliRunner().invoke(predict_cmd, ["-m", str(demo), "-i", *map(str, images), "-o", f"{out}/",
                                                "--backend", "ort", "--json", *extra])

    plain, labelled = run(tmp_path / "a"), run(tmp_path / "b", "--labels-graph")
    assert plain.exit_code == 0 and labelled.exit_code == 0, labelled.output
    modes = [row["mode"] for row in json.loads(labelled.output[labelled.output.index("{"):])["images"]]
    assert len(modes) == len(images) and all(m.startswith("labels") for m in modes)
    for p in images:
        name = f"{p.stem}_OUT.png"
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    # an export without the labels graph, and a threshold the graph was not built for: one line each
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ("model.onnx", "manifest.json"):
        (bare / f).write_bytes((demo / f).read_bytes())
    data = json.loads((bare / "manifest.json").read_text())
    data["onnx"]["labels"] = None
    data["artifacts"] = [a for a in data["artifacts"] if a["path"] != names.ONNX_LABELS]
    (bare / "manifest.json").write_text(json.dumps(data))
    for model, extra, words in [(bare, [], "has no model_labels.onnx"),
                                (one_class, ["--mask-threshold", "0.7"], "built for --mask-threshold 0.5")]:
        result = CliRunner().invoke(predict_cmd, ["-m", str(model), "-i", str(images[0]), "-o", f"{tmp_path}/c/",
                                                  "--backend", "ort", "--labels-graph", *extra])
        assert result.exit_code != 0 and words in result.output, result.output
        assert "Traceback" not in result.output
