"""Every trace/export failure is one line: the step, the model's own error, the fix."""

import pytest
import torch
from click.testing import CliRunner

from unetrt.cli.export import export_cmd
from unetrt.errors import ExportError
from unetrt.exporter import ExportConfig, export
from unetrt.exporter.failures import explain, last_line, missing_package


def test_missing_optional_package_says_pip_install(tmp_path):
    with pytest.raises(ExportError) as err:
        export(ExportConfig(factory="tests.fixtures.thirdparty:needs_missing_package", output_dir=str(tmp_path),
                            engine=False))
    msg = str(err.value)
    assert msg.startswith("eager probe failed at input 1x3x67x77: the model needs an optional package")
    assert "OptionalImportError: from unetrt_missing_pkg import rearrange" in msg
    assert msg.endswith("| pip install unetrt-missing-pkg") and "\n" not in msg


def test_missing_package_wins_over_size_errors_met_while_probing(tmp_path):
    with pytest.raises(ExportError) as err:
        export(ExportConfig(factory="tests.fixtures.thirdparty:needs_missing_package",
                            model_kwargs={"divisible": 32}, output_dir=str(tmp_path), engine=False))
    msg = str(err.value)
    assert msg.startswith("eager probe failed at input 1x3x32x64: the model needs an optional package")
    assert msg.endswith("| pip install unetrt-missing-pkg")


def test_missing_package_names():
    assert missing_package(ModuleNotFoundError("No module named 'cv2.x'", name="cv2.x")) == "opencv-python"
    assert missing_package(RuntimeError("boom")) is None
    wrapped = RuntimeError("while calling forward")
    wrapped.__cause__ = ImportError("No module named 'einops'")
    assert missing_package(wrapped) == "einops"


def test_data_dependent_control_flow_says_what_to_change():
    class Branchy(torch.nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x  # decided by values, not shapes

    try:
        torch.export.export(Branchy(), (torch.randn(1, 1, 8, 8),), strict=False)
    except Exception as exc:  # torch's own error type
        error = explain("torch.export", exc, shape=(1, 1, 8, 8))
    else:
        pytest.fail("torch.export traced a value-dependent branch")
    msg = str(error)
    assert msg.startswith("torch.export failed at input 1x1x8x8: ")
    assert "torch.where" in msg and "\n" not in msg


def test_last_line_skips_torch_hints():
    exc = RuntimeError("Sizes of tensors must match\n\nFor more information, run with TORCH_LOGS=+dynamic")
    assert last_line(exc) == "RuntimeError: Sizes of tensors must match"


def test_cli_prints_one_line_and_debug_keeps_the_traceback(tmp_path, monkeypatch):
    args = ["--model", "tests.fixtures.thirdparty:always_fails", "-o", str(tmp_path / "out"), "--no-engine"]
    monkeypatch.delenv("UNETRT_DEBUG", raising=False)
    result = CliRunner().invoke(export_cmd, args)
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "weights not loaded for input (1, 3, 32, 34)" in lines[0]
    assert "Traceback" not in result.output
    monkeypatch.setenv("UNETRT_DEBUG", "1")
    result = CliRunner().invoke(export_cmd, args)
    assert result.exit_code == 1
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    # the chained traceback ends with the model's own raise, then the one-line error
    assert "Traceback" in text and "raise RuntimeError(f\"weights not loaded" in text


class ItemInIf(torch.nn.Module):
    """``.item()`` in an ``if``: torch.export refuses it, the TorchScript fallback freezes the branch."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        if x.mean().item() > 0:  # random inputs: either way at about half the sweep's sizes
            y = y * 2
        return y


class SampleAndTimestep(torch.nn.Module):
    """``forward(sample, timestep)`` as diffusers' UNets have it."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, sample, timestep):
        return self.conv(sample) + timestep


def unetr_2d(img_size=(32, 32)):
    from monai.networks.nets import UNETR

    torch.manual_seed(0)
    return UNETR(in_channels=1, out_channels=2, img_size=img_size, spatial_dims=2, feature_size=4, hidden_size=48,
                 mlp_dim=96, num_heads=4)


def _error_line(args, tmp_path) -> str:
    res = CliRunner().invoke(export_cmd, [*args, "-o", str(tmp_path / "o"), "--no-engine"])
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert not (tmp_path / "o").exists()
    return lines[0]


@pytest.mark.slow
def test_item_in_an_if_is_named_as_a_branch_on_values(tmp_path):
    line = _error_line(["--model", "tests.thirdparty.test_export_failures:ItemInIf"], tmp_path)
    assert "parity failed" in line and "the model branches on tensor values" in line
    assert "TorchScript fallback froze that branch" in line and "torch.where" in line
    assert "branches on sizes" not in line and "--align N or --static" not in line


def test_forward_with_a_second_input_says_how_to_wrap(tmp_path):
    line = _error_line(["--model", "tests.thirdparty.test_export_failures:SampleAndTimestep"], tmp_path)
    assert "missing 1 required positional argument: 'timestep'" in line
    assert "expected a model whose forward takes one tensor" in line and "forward(x)" in line
    assert "in_channels" not in line


def test_unetr_points_to_its_own_img_size(tmp_path):
    line = _error_line(["--model", "tests.thirdparty.test_export_failures:unetr_2d",
                        "--model-kwargs", '{"img_size": [32, 48]}'], tmp_path)
    assert "expected the one input size the model is built for (32x48, its img_size)" in line
    assert "--static --shape 32x48" in line and "--align" not in line


@pytest.mark.slow
def test_unetr_static_at_its_img_size_exports(tmp_path):
    res = CliRunner().invoke(export_cmd, ["--model", "tests.thirdparty.test_export_failures:unetr_2d", "--static",
                                          "--shape", "32x32", "-o", str(tmp_path / "o"), "--no-engine"])
    assert res.exit_code == 0, res.output


def test_fixed_size_hints():
    from unetrt.exporter.failures import fixed_size

    assert fixed_size(unetr_2d((32, 48))) == (32, 48)
    assert fixed_size(torch.nn.Conv2d(1, 1, 1)) is None


def test_volume_wording_in_notes_and_summary():
    from unetrt.cli.render import render_export
    from unetrt.exporter.preflight import alignment_cost

    assert alignment_cost(16, spatial_dims=3) == ("alignment 16: 64x64x64 runs as 64x64x64 (+0.0% voxels); worst "
                                                  "case near it 65x65x65 -> 80x80x80 (+86.4%)")
    assert alignment_cost(16).startswith("alignment 16: 256x256 runs as 256x256 (+0.0% pixels)")
    import io

    from rich.console import Console

    from tests.helpers import make_manifest

    manifest = make_manifest(
        model={"arch": None, "factory": "f", "kwargs": {}, "params": 1, "checkpoint": None, "weights": "random-init"},
        input={"name": "input", "channels": 1, "dtype": "float32", "layout": "NCDHW", "alignment": 4, "min_size": 4,
               "dynamic": {"batch": True, "depth": True, "height": True, "width": True}, "static_shape": None,
               "pad_to_alignment": True})
    console = Console(file=io.StringIO(), width=200, color_system=None)
    render_export(manifest, "out", console)
    text = console.file.getvalue()
    assert "[N,1,D,H,W]" in text and "D, H, W multiples of 4" in text and "64x64x64 runs as 64x64x64" in text
    assert "H,W]" not in text.replace("D,H,W]", "")
