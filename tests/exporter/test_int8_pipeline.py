"""``unet-export --int8`` end to end: the trained demo model's accuracy, engines (TensorRT-RTX, CPU-only),
the manifest section, load(precision="int8"), and bad input through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from tests.helpers import trt_available
from unetrt.artifacts.manifest import Manifest
from unetrt.exporter import ExportConfig, export
from unetrt.exporter.int8 import check_qdq

ASSETS = Path(__file__).resolve().parents[2] / "unetrt" / "assets"
SAMPLES = ASSETS / "samples"
DEMO = dict(arch="milesial", checkpoint=str(ASSETS / "milesial_demo.pth"),
            model_kwargs={"num_classes": 3, "width": 8})
HAS_TRT = trt_available()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The trained demo model exported with --int8 --int8-cpu, calibrated on its shipped samples."""
    out = tmp_path_factory.mktemp("int8_demo") / "export"
    result = export(ExportConfig(**DEMO, output_dir=str(out), verify=False, int8=True, int8_cpu=True,
                                 calib_images=str(SAMPLES), engine=HAS_TRT))
    return out, result.manifest


@pytest.mark.slow
def test_demo_int8_meets_the_bars_on_its_samples(demo):
    out, m = demo
    int8 = m.int8
    assert int8.calibration["files"] == [f"sample_{i}.png" for i in range(4)]  # *_mask.png skipped
    assert len(int8.evaluation) == 4 and all(e["passed"] for e in int8.evaluation)
    assert min(e["argmax_agreement"] for e in int8.evaluation) >= 0.99
    assert min(e["mean_dice"] for e in int8.evaluation) >= 0.98
    assert all(set(e["per_class"]) == {"0", "1", "2"} for e in int8.evaluation)  # per-class Dice/IoU recorded
    assert min(e["argmax_agreement"] for e in int8.cpu.evaluation) >= 0.99
    assert int8.kept_float == [] and int8.quantized_nodes > 20
    assert int8.structure["zero_points"] == "int8, all 0" and int8.structure["int32_bias_dq"] == 0
    assert [r["input_shape"] for r in int8.sweep["sizes"]][:2] == [[2, 3, 32, 32], [1, 3, 16, 17]]
    # what was written is what the manifest describes, and re-checks
    source, model = onnx.load(str(out / "model.onnx")), onnx.load(str(out / "model_int8.onnx"))
    assert check_qdq(model, source) == int8.structure
    reread = Manifest.read(out)
    assert reread.int8.sha256 == int8.sha256 and reread.sha256_of("model_int8_cpu.onnx") == int8.cpu.sha256
    assert {a.path for a in reread.artifacts} >= {"model.onnx", "model_int8.onnx", "model_int8_cpu.onnx"}


@pytest.mark.slow
def test_demo_int8_summary_and_rendering(demo, capsys):
    import json

    from unetrt.cli.render import render_export, summary

    out, m = demo
    s = summary(m, out)["int8"]
    assert s["path"] == "model_int8.onnx" and s["cpu"]["path"] == "model_int8_cpu.onnx" and json.dumps(s)
    render_export(m, out)
    text = " ".join(capsys.readouterr().err.split())
    assert "int8 model_int8.onnx" in text and "mean Dice" in text and "model_int8_cpu.onnx for ONNX Runtime CPU" in text


@pytest.mark.slow
@pytest.mark.trt
@pytest.mark.skipif(not HAS_TRT, reason="neither tensorrt nor tensorrt_rtx is installed")
def test_demo_int8_engine_built(demo):
    out, m = demo
    engines = {e.path: e for e in m.engines}
    assert set(engines) == {"model.engine", "model_int8.engine"}
    entry = engines["model_int8.engine"]
    assert entry.precision == "int8" and entry.onnx == "model_int8.onnx" and (out / entry.path).stat().st_size
    assert entry.size_bytes == (out / entry.path).stat().st_size and "Q/DQ" in entry.int8_mode
    assert entry.io[0]["shape"] == [-1, 3, -1, -1] and entry.io[0]["dtype"] == "float32"


@pytest.mark.slow
def test_load_picks_the_int8_form_for_the_cpu(demo):
    from unetrt.runtime import load
    from unetrt.runtime.predict import predict

    out, _ = demo
    image = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(SAMPLES / "sample_1.png").convert("RGB"))
    masks = {}
    for backend in ("ort-int8", "ort-int8-cpu", "ort"):
        with load(out, backend=backend, device="cpu") as runner:
            masks[backend] = predict(runner, image).mask
            assert runner.name == backend
    with load(out, device="cpu", precision="int8") as runner:
        assert runner.name == "ort-int8-cpu"  # the CPU form when the export has it
    for backend in ("ort-int8", "ort-int8-cpu"):
        assert np.mean(masks[backend] == masks["ort"]) >= 0.99


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ort-int8", "ort-int8-cpu"])
def test_int8_runners_keep_the_runner_contract(demo, backend):
    """FP32 I/O with dynamic N/H/W, outputs by name, bad inputs refused like every runner."""
    from unetrt.errors import InputError
    from unetrt.runtime import load

    out, _ = demo
    with load(out, backend=backend, device="cpu") as runner:
        meta = runner.input_metadata["input"]
        assert meta.dtype == "float32" and meta.shape[1] == 3
        x = np.random.default_rng(0).random((2, 3, 40, 24), dtype=np.float32)
        got = runner.infer({"input": x})
        assert list(got) == ["logits"] and got["logits"].shape == (2, 3, 40, 24)
        assert got["logits"].dtype == np.float32
        with pytest.raises(InputError):
            runner.infer({"input": x[:, :2]})


@pytest.mark.slow
@pytest.mark.trt
@pytest.mark.skipif(not HAS_TRT, reason="neither tensorrt nor tensorrt_rtx is installed")
def test_int8_engine_holds_int8_weights(tmp_path):
    """milesial width 32: the INT8 plan is well under the FP32 plan (0.38x measured; weights really INT8)."""
    out = tmp_path / "w32"
    m = export(ExportConfig(arch="milesial", model_kwargs={"width": 32}, output_dir=str(out), verify=False,
                            simplify=False, int8=True, calib_count=2, int8_min_argmax=0.0, int8_min_dice=0.0,
                            engine=True)).manifest
    sizes = {e.precision: e.size_bytes for e in m.engines}
    assert sizes["int8"] <= 0.40 * sizes["fp32"], sizes
    assert any("random inputs calibrate badly" in n for n in m.export.notes)  # no --calib-images: warned


# --- bad input through the CLI: one line, exit != 0, nothing written ---------------------------------

@pytest.mark.parametrize("args, match", [
    (["--calib-count", "0"], "--calib-count 0"),
    (["--calib-images", "EMPTY"], "no images or .npy files"),
    (["--calib-images", "MISSING"], "is not a directory"),
])
def test_cli_int8_bad_input(tmp_path, args, match):
    from unetrt.cli.export import export_cmd

    (tmp_path / "empty").mkdir()
    args = [{"EMPTY": str(tmp_path / "empty"), "MISSING": str(tmp_path / "nope")}.get(a, a) for a in args]
    out = tmp_path / "out"
    result = CliRunner().invoke(export_cmd, ["--width", "4", "--int8", "--no-engine", "-o", str(out), *args])
    assert result.exit_code != 0 and match in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1 and "Traceback" not in result.output
    assert not out.exists()


def outlier_net():
    """Conv(4->4) -> ReLU -> Conv(4->2) ignoring input channel 3 (the calibration files make it 1000x larger):
    INT8 of the input wipes out the channels the logits depend on (a ``--model`` factory for the CLI)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(4, 2, 1, bias=False))
    with torch.no_grad():
        net[0].weight[:, 3] = 0.0
    return net


def test_cli_int8_accuracy_failure_prints_table(tmp_path):
    """Bars not met within --int8-max-float 0: the table and the nodes that would stay float, exit 1,
    nothing written."""
    from unetrt.cli.export import export_cmd

    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(4):
        x = np.random.default_rng(i).random((1, 4, 24, 24), dtype=np.float32)
        x[:, 3] *= 1000.0
        np.save(calib / f"x{i}.npy", x)
    out = tmp_path / "out"
    result = CliRunner().invoke(export_cmd, [
        "--model", f"{__file__}:outlier_net", "--no-verify", "--no-engine", "--int8", "--calib-images", str(calib),
        "--calib-count", "2", "--int8-dice", "0", "--int8-max-float", "0", "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "INT8 (default quantization) vs eager FP32" in result.output and "NO" in result.output
    assert "needs 1 nodes (limit 0) in float:" in " ".join(result.output.split()) and not out.exists()


@pytest.mark.slow
def test_static_export_calibrates_at_its_shape(tmp_path):
    """A static graph takes one shape: the sample images are cropped/padded to it and batched."""
    m = export(ExportConfig(arch="milesial", model_kwargs={"width": 4, "num_classes": 3},
                            output_dir=str(tmp_path / "s"), static_shape=(2, 64, 64), verify=False, engine=False,
                            int8=True, calib_images=str(SAMPLES), int8_min_argmax=0.0, int8_min_dice=0.0)).manifest
    assert m.int8.calibration["inputs"] == [[2, 3, 64, 64]] * 2
    assert [e["input_shape"] for e in m.int8.evaluation] == ["2x3x64x64"] * 2
    assert m.int8.sweep["sizes"][0]["input_shape"] == [2, 3, 64, 64]
