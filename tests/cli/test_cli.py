"""CLI through click's CliRunner, and once through the installed console script."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import trt_available
from unetrt.cli import main
from unetrt.cli.export import export_cmd

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner():
    return CliRunner()


def _last_line(result):
    return result.output.strip().splitlines()[-1]


@pytest.mark.slow
def test_export_json_summary(runner, tmp_path):
    out = tmp_path / "m"
    res = runner.invoke(main, ["export", "--arch", "milesial", "--width", "4", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["model"]["arch"] == "milesial" and summary["model"]["kwargs"]["width"] == 4
    assert summary["verification"]["passed"] is True
    assert summary["onnx"]["opset"] == 18
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["onnx"]["sha256"] == summary["onnx"]["sha256"]
    built = {"model.onnx", "model.engine"} if trt_available() else {"model.onnx"}  # engine: default when TRT imports
    assert {a["path"] for a in manifest["artifacts"]} == built
    assert [e["precision"] for e in summary["engines"]] == (["fp32"] if trt_available() else [])
    assert manifest["tools"]["torch"].startswith("2.")


def test_unknown_arch_suggests_close_names(runner, tmp_path):
    res = runner.invoke(export_cmd, ["--arch", "milesal", "-o", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "unknown model 'milesal'" in res.output and "did you mean milesial" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,needle", [
    (["--model-kwargs", "{width: 4"], "invalid JSON"),
    (["--model-kwargs", "[1, 2]"], "is a JSON list"),
    (["--align", "zero"], "invalid alignment 'zero'"),
    (["--static", "--shape", "12xab"], "invalid shape '12xab'"),
])
def test_bad_option_values(runner, tmp_path, args, needle):
    res = runner.invoke(export_cmd, ["--arch", "milesial", "-o", str(tmp_path / "o"), *args])
    assert res.exit_code == 2
    assert needle in res.output


@pytest.mark.parametrize("spec,needle", [
    ("no_colon_here", "pkg.module:factory"),
    ("tests.fixtures.nope:f", "tests.fixtures.nope"),
    ("tests.fixtures.thirdparty:missing", "missing"),
    ("tests.fixtures.thirdparty:broken", "factory exploded"),
    ("tests.fixtures.thirdparty:not_a_module", "nn.Module"),
])
def test_bad_user_model(runner, tmp_path, spec, needle):
    res = runner.invoke(export_cmd, ["--model", spec, "-o", str(tmp_path / "o")])
    assert res.exit_code == 1, res.output
    assert needle in res.output
    assert len([ln for ln in res.output.splitlines() if ln.startswith("Error:")]) == 1
    assert not (tmp_path / "o").exists()


def test_zoo_flags_refused_with_user_model(runner, tmp_path):
    res = runner.invoke(export_cmd, ["--model", "tests.fixtures.thirdparty:branchy", "--width", "2",
                                     "-o", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "--model-kwargs '{\"width\": 2}'" in res.output


def test_missing_and_pickled_checkpoints(runner, tmp_path):
    import torch

    from unetrt.models import create_model

    res = runner.invoke(export_cmd, ["--width", "4", "-c", str(tmp_path / "nope.pth"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "nope.pth" in res.output
    pickled = tmp_path / "whole.pth"
    torch.save(create_model("milesial", width=4), pickled)
    res = runner.invoke(export_cmd, ["--width", "4", "-c", str(pickled), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "state_dict" in res.output
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    res = runner.invoke(export_cmd, ["--width", "4", "-c", str(corrupt), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "corrupt.pth" in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_parity_failure_shows_table_and_fails(runner, tmp_path):
    res = runner.invoke(export_cmd, ["--width", "4", "--atol", "1e-15", "-o", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "parity failed" in res.output and "max_abs" in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_non_empty_output_and_force(runner, tmp_path):
    (tmp_path / "x.txt").write_text("1")
    res = runner.invoke(export_cmd, ["--width", "4", "--no-verify", "-o", str(tmp_path)])
    assert res.exit_code == 1 and "--force" in res.output
    res = runner.invoke(export_cmd, ["--width", "4", "--no-verify", "--force", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "parity verification skipped" in res.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output(runner, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    res = runner.invoke(export_cmd, ["--width", "4", "-o", str(locked / "o")])
    assert res.exit_code == 1 and "not writable" in res.output


def test_align_errors(runner, tmp_path):
    res = runner.invoke(export_cmd, ["--arch", "prelu", "--width", "4", "--align", "8", "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "needs H and W to be multiples of 16" in res.output
    res = runner.invoke(export_cmd, ["--arch", "paper", "--width", "4", "--static", "--shape", "64x64",
                                     "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "not admissible" in res.output


def test_models_json(runner):
    res = runner.invoke(main, ["models", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.output)
    by_name = {r["name"]: r for r in rows}
    assert {"milesial", "paper", "crop", "pad", "same", "plain", "prelu", "resnet18-unet",
            "resnet152-unet"} <= set(by_name)
    assert by_name["plain"]["alignment"] == 16 and by_name["paper"]["geometry"] == "valid"
    assert by_name["milesial"]["params"] == sum(
        p.numel() for p in __import__("unetrt").create_model("milesial").parameters())


@pytest.mark.slow
def test_console_script_runs(tmp_path):
    exe = Path(sys.executable).with_name("unet-export")
    res = subprocess.run([str(exe), "--width", "4", "--no-verify", "-o", str(tmp_path / "o"), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["onnx"]["path"] == "model.onnx"
    res = subprocess.run([str(exe), "--arch", "nope"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode != 0 and "unknown model 'nope'" in res.stderr


def test_output_under_a_file_is_refused(runner, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    res = runner.invoke(export_cmd, ["--width", "4", "-o", str(tmp_path / "file.txt" / "o")])
    assert res.exit_code == 1 and "not writable" in res.output


@pytest.mark.slow
def test_inspect_reports_manifest_facts(runner, tmp_path):
    out = tmp_path / "m"
    assert runner.invoke(main, ["export", "--width", "4", "-o", str(out), "--fp16", "--no-verify"]).exit_code == 0
    res = runner.invoke(main, ["inspect", str(out / "model_fp16.onnx"), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["manifest_match"] is True
    assert info["model"]["arch"] == "milesial" and info["input"]["min_size"] == 16
    assert info["onnx"]["inputs"][0]["shape"] == ["batch", 3, "height", "width"]
    assert info["fp16"]["keep_io_types"] is True
    if trt_available():
        res = runner.invoke(main, ["inspect", str(out / "model_fp16.engine"), "--json"])
        eng = json.loads(res.output)
        assert eng["engine"]["precision"] == "fp16" and eng["manifest_match"] is True
        assert eng["layers"]["available"] is False and "GPU" in eng["layers"]["reason"]
    with open(out / "model.onnx", "ab") as f:
        f.write(b"\0")
    res = runner.invoke(main, ["inspect", str(out / "model.onnx")])
    assert res.exit_code == 1 and "does NOT match" in res.output and "not a readable ONNX model" in res.output
    res = runner.invoke(main, ["inspect", str(tmp_path / "missing.onnx")])
    assert res.exit_code == 1 and "does not exist" in res.output


def _greedy_cmd():
    import click

    from unetrt.cli.options import GreedyCommand, GreedyOption

    @click.command(cls=GreedyCommand)
    @click.option("-i", "--input", "inputs", cls=GreedyOption)
    @click.option("-o", "--output", "outputs", cls=GreedyOption)
    @click.option("-s", "--scale", type=float, default=1.0)
    @click.option("-v", "--viz", is_flag=True)
    def cmd(inputs, outputs, scale, viz):
        click.echo(json.dumps({"i": inputs, "o": outputs, "s": scale, "v": viz}))
    return cmd


@pytest.mark.parametrize("argv, expected", [
    (["-i", "a", "b", "-o", "x", "y"], {"i": ["a", "b"], "o": ["x", "y"], "s": 1.0, "v": False}),
    (["-i", "a", "-i", "b", "-v"], {"i": ["a", "b"], "o": [], "s": 1.0, "v": True}),
    (["--input=a", "b", "-s", "0.5", "--input", "c"], {"i": ["a", "b", "c"], "o": [], "s": 0.5, "v": False}),
    (["-ia", "b", "--output", "x"], {"i": ["a", "b"], "o": ["x"], "s": 1.0, "v": False}),
])
def test_greedy_options_take_the_values_after_the_flag(argv, expected):
    res = CliRunner().invoke(_greedy_cmd(), argv)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == expected


def test_greedy_options_leave_arguments_after_double_dash_and_other_options_alone():
    from unetrt.cli.options import regroup_greedy

    flags = {"-i", "--input"}
    assert regroup_greedy(["-i", "a", "--", "b", "-i"], flags) == ["-i", "a", "--", "b", "-i"]
    assert regroup_greedy(["-s", "0.5", "x"], flags) == ["-s", "0.5", "x"]
    res = CliRunner().invoke(_greedy_cmd(), ["-s", "0.5", "x"])
    assert res.exit_code == 2 and "Got unexpected extra argument (x)" in res.output


def test_device_is_one_vocabulary_across_commands(runner):
    from unetrt.cli.bench import bench_cmd
    from unetrt.cli.options import DEVICE, DEVICE_HELP
    from unetrt.cli.predict import predict_cmd

    for cmd in (bench_cmd, predict_cmd):
        (param,) = [p for p in cmd.params if p.name == "device"]
        assert param.type is DEVICE and param.help == DEVICE_HELP and param.default == "auto"
    assert DEVICE.convert("GPU", None, None) == "cuda" and DEVICE.convert("cpu", None, None) == "cpu"
    res = runner.invoke(main, ["bench", "--device", "tpu"])
    assert res.exit_code == 2
    assert "unknown device 'tpu' | expected auto, cpu or cuda (gpu = cuda)" in res.output


def test_export_cmd_takes_the_option_groups(runner, tmp_path, monkeypatch):
    import inspect

    import unetrt.exporter as exporter
    from unetrt.exporter import EngineOptions, Fp16Options, Int8Options, VerifyOptions

    seen = {}

    def fake_export(config, progress=None):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(exporter, "export", fake_export)
    res = runner.invoke(main, ["export", "-o", str(tmp_path / "m"), "--no-verify", "--atol", "0.5", "--fp16-io",
                               "--fp16-argmax", "0.9", "--int8-cpu", "--calib-count", "3", "--int8-max-float", "2",
                               "--no-engine", "--workspace", "2", "--compute-capability", "SM86", "--tf32"])
    assert res.exit_code == 0, res.output
    config = seen["config"]
    assert config.verify_options == VerifyOptions(enabled=False, atol_factor=0.5)
    assert config.fp16_options == Fp16Options(enabled=True, io=True, atol=1e-2, min_argmax=0.9)
    assert config.int8_options == Int8Options(enabled=True, cpu=True, calib_count=3, max_float=2)
    assert config.engine_options == EngineOptions(build=False, workspace_bytes=2 * 2**20,
                                                  compute_capabilities=["SM86"], tf32=True)
    assert len(inspect.signature(export_cmd.callback.__wrapped__).parameters) < 25


def test_unequal_profile_counts_are_one_error_line(runner, tmp_path):
    res = runner.invoke(main, ["export", "-o", str(tmp_path / "m"), "--min-shape", "1x3x32x32"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert _last_line(res) == ("Error: got 1 --min-shape, 0 --opt-shape, 0 --max-shape | expected the same number "
                               "of each (one per profile) | give all three for every profile")
