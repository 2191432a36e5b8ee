"""INT8 Q/DQ ONNX: TensorRT form, structure checks, accuracy search, calibration inputs, bad input."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from unetrt.errors import CalibrationError, EngineBuildError, ExportError, ParityError, QuantizationError
from unetrt.exporter.int8 import quantizers as int8_quantizers
from unetrt.exporter import trt_builder as trt_build
from unetrt.exporter.int8.calib import admissible, common_crop, fit_static, load_calibration_files
from unetrt.exporter.fp16.search import run_ort
from unetrt.exporter.int8 import check_qdq, quantize_int8
from unetrt.exporter.int8.search import Int8Bars, measure, quantized_nodes

sys.path.insert(0, os.path.dirname(__file__))
from tiny_unet_onnx import eager, tiny_unet  # noqa: E402

RNG = np.random.default_rng(3)
CALIB = [RNG.random((1, 3, 32, 32), dtype=np.float32) for _ in range(3)]
EVAL = [RNG.random((1, 3, 40, 24), dtype=np.float32), RNG.random((2, 3, 24, 32), dtype=np.float32)]
NO_BARS = Int8Bars(min_argmax_agreement=0.0, min_mean_dice=0.0)


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    return tiny_unet(tmp_path_factory)


def _quantize(unet, out, **kw):
    path, model = unet
    kw.setdefault("bars", NO_BARS)
    return quantize_int8(path, out, calibration=CALIB, eval_feeds=EVAL, references=[eager(model, x) for x in EVAL],
                         labels=["a", "b"], quantizer="onnxruntime", **kw)


@pytest.fixture(scope="module")
def int8_unet(unet, tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    return _quantize(unet, folder / "model_int8.onnx", cpu_path=folder / "model_int8_cpu.onnx")


def _inits(model):
    return {t.name: t for t in model.graph.initializer}


def _dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_tensorrt_form_structure(unet, int8_unet):
    """Symmetric int8 Q/DQ: int8 per-channel weights, int8 zero points all 0, float biases, FP32 dynamic I/O."""
    model, source = onnx.load(int8_unet.path), onnx.load(str(unet[0]))
    inits = _inits(model)
    dqs = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    weights = [inits[n.input[0]] for n in dqs if n.input[0] in inits]
    assert weights and all(w.data_type == TensorProto.INT8 for w in weights)
    assert all(numpy_helper.to_array(inits[n.input[1]]).size > 1 for n in dqs if n.input[0] in inits)  # per-channel
    for node in [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]:
        zp = inits[node.input[2]]
        assert zp.data_type == TensorProto.INT8 and not numpy_helper.to_array(zp).any()
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose") and len(n.input) > 2]
    assert convs and all(inits[n.input[2]].data_type == TensorProto.FLOAT for n in convs)  # biases stay float
    for mine, theirs in zip([*model.graph.input, *model.graph.output], [*source.graph.input, *source.graph.output]):
        assert mine.type.tensor_type.elem_type == TensorProto.FLOAT and _dims(mine) == _dims(theirs)
    assert isinstance(_dims(model.graph.input[0])[2], str)  # H stays symbolic
    s = int8_unet.structure
    assert s["int32_bias_dq"] == 0 and s["int8_weights"] == len(weights) == s["per_channel_weights"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["precision"] == "int8" and meta["int8_form"] == "tensorrt"
    assert int8_unet.quantized_nodes == len(quantized_nodes(model)) > 0 and int8_unet.kept_float == []


def test_int8_runs_at_unseen_sizes_and_is_close(unet, int8_unet):
    _, model = unet
    x = np.random.default_rng(5).random((2, 3, 56, 40), dtype=np.float32)
    out = run_ort(onnx.load(int8_unet.path), {"input": x})["logits"]
    ref = eager(model, x)
    assert out.shape == ref.shape
    m = measure(ref, out, Int8Bars())
    assert m["max_abs"] < 0.2 * float(np.ptp(ref)) and m["argmax_agreement"] > 0.9


def test_cpu_form_is_uint8_asymmetric(int8_unet):
    model = onnx.load(int8_unet.cpu["path"])
    inits = _inits(model)
    zps = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert zps and all(z.data_type == TensorProto.UINT8 for z in zps)
    assert any(numpy_helper.to_array(z).any() for z in zps)  # asymmetric: non-zero zero points
    with pytest.raises(QuantizationError, match="zero point"):
        check_qdq(model, model)  # TensorRT would reject it


def test_structure_check_rejects_int32_bias(unet, tmp_path):
    """quantize_static with QuantizeBias (its default) gives int32 bias DQ, which TensorRT's parser refuses."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    path, _ = unet
    out = tmp_path / "bias.onnx"
    quantize_static(str(path), str(out), int8_quantizers._Reader(CALIB, "input"), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    with pytest.raises(QuantizationError, match="INT32"):
        check_qdq(onnx.load(str(out)), onnx.load(str(path)))


def _outlier_model(path):
    """Conv(4->4) -> Relu -> Conv(4->2) on inputs whose channel 3 is 1000x larger and ignored by the first
    Conv: a per-tensor INT8 scale on the input wipes out the channels the logits depend on."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    w1[:, 3] = 0.0
    w2 = rng.standard_normal((2, 4, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "w1"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["logits"], name="conv_b")]
    graph = helper.make_graph(
        nodes, "outlier", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    feeds = [np.random.default_rng(i).random((1, 4, 24, 24), dtype=np.float32) for i in range(4)]
    for x in feeds:
        x[:, 3] *= 1000.0
    return path, model, feeds[:2], feeds[2:]


def test_search_keeps_the_breaking_nodes_float(tmp_path):
    """Default INT8 breaks the bars; the search keeps float only the Conv that would quantize the outlier
    input, with its measured reason, and the rest stays INT8."""
    path, source, calib, evals = _outlier_model(tmp_path / "outlier.onnx")
    refs = [run_ort(source, {"input": x})["logits"] for x in evals]
    kw = dict(calibration=calib, eval_feeds=evals, references=refs, labels=["a", "b"], quantizer="onnxruntime",
              bars=Int8Bars(min_argmax_agreement=0.99, min_mean_dice=0.0))  # class 1 is rare: Dice is noisy
    result = quantize_int8(path, tmp_path / "s.onnx", **kw)
    assert [k["node"] for k in result.kept_float] == ["conv_a"]
    assert result.kept_float[0]["reason"].startswith("quantized: argmax")
    assert result.quantized_nodes == 2
    inits = _inits(onnx.load(result.path))
    assert inits["w1"].data_type == TensorProto.FLOAT and inits["w2_quantized"].data_type == TensorProto.INT8
    assert all(e["passed"] and e["argmax_agreement"] >= 0.99 for e in result.evaluation)
    with pytest.raises(ParityError, match=r"needs 1 nodes \(limit 0\) in float: conv_a") as info:
        quantize_int8(path, tmp_path / "strict.onnx", max_float=0, **kw)
    assert "argmax" in info.value.table and "NO" in info.value.table and "\n" not in str(info.value)
    assert not (tmp_path / "strict.onnx").exists()
    kw["bars"] = Int8Bars()  # the rare class's Dice then needs both Convs float: no INT8 weight would be left
    with pytest.raises(ParityError, match="leaves no INT8 weight, in float: conv_a, conv_b"):
        quantize_int8(path, tmp_path / "none.onnx", **kw)


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_methods(unet, tmp_path, method, capsys):
    result = _quantize(unet, tmp_path / f"{method}.onnx", method=method)
    assert result.method == method and result.structure["zero_points"] == "int8, all 0"
    assert capsys.readouterr().out == ""  # ORT's progress prints do not reach stdout (--json stays clean)
    mixed = [CALIB[0], RNG.random((1, 3, 24, 40), dtype=np.float32)]
    with pytest.raises(ExportError, match="inputs of one shape"):
        quantize_int8(unet[0], tmp_path / "mixed.onnx", calibration=mixed, eval_feeds=EVAL[:1],
                      references=[eager(unet[1], EVAL[0])], labels=["a"], method=method, quantizer="onnxruntime")


def test_no_quantizable_layer(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["logits"], name="relu")], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "relu.onnx"))
    x = CALIB[0]
    with pytest.raises(QuantizationError, match="no layer the quantizer can take to INT8"):
        quantize_int8(tmp_path / "relu.onnx", tmp_path / "q.onnx", calibration=[x], eval_feeds=[x],
                      references=[np.maximum(x, 0)], labels=["x"], quantizer="onnxruntime")
    assert not (tmp_path / "q.onnx").exists()


# --- calibration inputs --------------------------------------------------------------------------------

def test_calibration_images_preprocessed_like_predict(tmp_path):
    from PIL import Image

    from unetrt.runtime.transforms import preprocess  # tests may cross layers

    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "a_mask.png")  # masks beside images are skipped
    Image.fromarray(rgb[..., 0]).save(tmp_path / "b.png")       # gray -> RGB as predict does
    np.save(tmp_path / "c.npy", np.full((3, 16, 16), 0.5, np.float32))
    files = load_calibration_files(tmp_path, 3)
    assert [n for n, _ in files] == ["a.png", "b.png", "c.npy"]
    np.testing.assert_array_equal(files[0][1], preprocess(rgb, 1.0, 3))
    assert files[1][1].shape == (1, 3, 20, 30) and files[2][1].shape == (1, 3, 16, 16)
    padded = admissible([files[0][1]], 16, 16)[0]
    assert padded.shape == (1, 3, 32, 32) and np.array_equal(padded[..., :20, :30], files[0][1])
    assert {a.shape for a in common_crop([f for _, f in files], 8, 16)} == {(1, 3, 16, 16)}
    batches = fit_static([f for _, f in files], (2, 3, 24, 24))  # static graphs: one shape, batched
    assert [b.shape for b in batches] == [(2, 3, 24, 24)]
    assert np.array_equal(batches[0][0, :, :20], files[0][1][0, :, :, 3:27])  # centre crop of a.png


@pytest.mark.parametrize("mode", ["P", "I;16", "CMYK", "LA", "exif"])
def test_calibration_files_read_like_predict(tmp_path, mode):
    """Calibration files go through predict's reader: palette, 16-bit, CMYK, alpha and EXIF-rotated images
    become the same network input ``unet-predict`` would feed (a plain ``np.asarray(Image.open(...))``
    gets palette indices, 16-bit values / 255 and sideways pictures)."""
    from PIL import Image

    from unetrt.runtime.transforms import load_image, preprocess  # tests may cross layers

    rgb = np.random.default_rng(1).integers(0, 256, (13, 9, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    name = tmp_path / "x.png"
    if mode == "P":
        img.quantize(16).save(name)
    elif mode == "I;16":
        Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(name)
    elif mode == "CMYK":
        name = tmp_path / "x.jpg"
        img.convert("CMYK").save(name)
    elif mode == "LA":
        img.convert("LA").save(name)
    else:
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees on display
        name = tmp_path / "x.jpg"
        img.save(name, exif=exif)
    (_, ours), = load_calibration_files(tmp_path, 3)
    theirs = preprocess(load_image(name, 3), 1.0, 3)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.shape == ((1, 3, 9, 13) if mode == "exif" else (1, 3, 13, 9)) and ours.max() <= 1.0
    if mode == "I;16":  # scaled by the bit depth, not / 255
        np.testing.assert_allclose(ours[0, 0], rgb[..., 0] / 255.0, atol=1e-6)


@pytest.mark.parametrize("setup, match", [
    ("empty", "no images or .npy files"),
    ("unreadable", "cannot read calibration input broken.png"),
    ("channels", "has 5 channels"),
    ("count", "calibration count 0"),
    ("missing", "is not a directory"),
])
def test_bad_calibration_inputs(tmp_path, setup, match):
    folder = tmp_path / "calib"
    if setup != "missing":
        folder.mkdir()
    if setup == "unreadable":
        (folder / "broken.png").write_bytes(b"not a png")
    if setup in ("channels", "count"):
        np.save(folder / "x.npy", np.zeros((5, 16, 16), np.float32))
    with pytest.raises(CalibrationError, match=match) as info:
        load_calibration_files(folder, 3, 0 if setup == "count" else 8)
    assert str(info.value).count(" | ") == 2


def test_image_channels_the_model_cannot_take(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(CalibrationError, match="rgb.png.*3 channel"):
        load_calibration_files(tmp_path, 2)


# --- engine builder: INT8 precision ------------------------------------------------------------------

class _FakeConfig:
    def __init__(self):
        self.flags = []

    def set_flag(self, flag):
        self.flags.append(flag)


def test_weakly_typed_int8_sets_flags_and_refuses_without_int8():
    """TensorRT 10.0-10.11: BuilderFlag.INT8 with the Q/DQ network (+ FP16 fallback); no INT8 -> error."""
    fake = SimpleNamespace(BuilderFlag=SimpleNamespace(INT8="INT8", FP16="FP16"))
    weak = trt_build._capabilities("tensorrt", "10.8.0")
    config = _FakeConfig()
    options = trt_build._configure(fake, SimpleNamespace(platform_has_fast_int8=True), config, weak, "int8",
                                   None, None, None, False, True)
    assert config.flags == ["INT8", "FP16"] and options["builder_flags"] == ["INT8", "FP16"]
    with pytest.raises(EngineBuildError, match="no INT8 support"):
        trt_build._configure(fake, SimpleNamespace(platform_has_fast_int8=False), _FakeConfig(), weak, "int8",
                             None, None, None, False)
    with pytest.raises(EngineBuildError, match="no INT8 support"):  # a TensorRT without the flag
        trt_build._configure(SimpleNamespace(BuilderFlag=SimpleNamespace()), SimpleNamespace(), _FakeConfig(),
                             weak, "int8", None, None, None, False)
    strong = trt_build._capabilities("tensorrt", "10.13.0")
    config = _FakeConfig()
    trt_build._configure(fake, SimpleNamespace(), config, strong, "int8", None, None, None, False)
    assert config.flags == []  # strongly typed: INT8 comes from the Q/DQ ONNX
    with pytest.raises(EngineBuildError, match="FP16 fallback"):
        trt_build._check_options(strong, "tensorrt", "int8", None, None, False, None, None, True)


def test_engine_precision_must_match_the_onnx(unet, int8_unet):
    caps = trt_build._capabilities("tensorrt-rtx", "1.7")
    with pytest.raises(EngineBuildError, match="holds no QuantizeLinear"):
        trt_build._check_onnx_precision(str(unet[0]), "int8", caps)
    with pytest.raises(EngineBuildError, match="holds Q/DQ"):
        trt_build._check_onnx_precision(int8_unet.path, "fp32", caps)


# --- bench parity rows and the backend registry ------------------------------------------------------

def test_bench_int8_parity_rows_use_the_int8_bars():
    from unetrt.bench.parity import parity_row

    ref = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ok = parity_row(ref, ref + 0.05, "int8")  # off by far more than any FP16 bar, same masks
    assert ok["parity_passed"] and ok["argmax_agreement"] == 1.0 and ok["min_argmax_agreement"] == 0.99
    flipped = ref.copy()
    flipped[:, :, :4] = -flipped[:, :, :4]
    bad = parity_row(ref, flipped, "int8")
    assert not bad["parity_passed"] and "argmax agreement" in bad["parity_reason"]


def test_int8_backends_are_registered():
    from unetrt.artifacts.refs import ArtifactRef
    from unetrt.runtime import backends as registry

    cpu, trt_form, engine = registry.get("ort-int8-cpu"), registry.get("ort-int8"), registry.get("trt-int8")
    assert (cpu.precision, trt_form.precision, engine.precision, engine.kind) == ("int8", "int8", "int8", "engine")
    assert cpu.artifact == ArtifactRef("onnx", "int8", "cpu") and cpu.artifact.file_name == "model_int8_cpu.onnx"
    assert trt_form.artifact.file_name == "model_int8.onnx" and engine.artifact.file_name == "model_int8.engine"
    assert (cpu.artifact.key, trt_form.artifact.key, engine.artifact.key) == \
        ("onnx_int8_cpu", "onnx_int8", "engine_int8")  # the bench's cache directories, as before


def test_measure_per_class_scores_and_bars():
    ref = np.zeros((1, 2, 4, 4), np.float32)
    ref[:, 1, :, :2] = 1.0                       # class 1 on the left half (8 px), class 0 on the right
    out = ref.copy()
    out[:, 1, 0, 2] = 2.0                        # one pixel flips to class 1
    m = measure(ref, out, Int8Bars(min_argmax_agreement=0.95, min_mean_dice=0.9))
    assert m["argmax_agreement"] == 15 / 16 and not m["passed"] and "argmax agreement" in m["reason"]
    assert m["per_class"]["1"] == {"dice": 16 / 17, "iou": 8 / 9}
    assert m["per_class"]["0"] == {"dice": 14 / 15, "iou": 7 / 8}
    assert m["mean_dice"] == pytest.approx((16 / 17 + 14 / 15) / 2) and m["max_abs"] == 2.0
    assert measure(ref, out[:, :, :3], Int8Bars())["reason"].startswith("shape")
