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
