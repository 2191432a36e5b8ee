"""``unetrt inspect`` exits non-zero on any problem; --json is machine-readable; the summary is readable."""

import json
import os
import re
import shutil

import pytest
from click.testing import CliRunner

from unetrt.cli import main
from unetrt.exporter import ExportConfig, export
from unetrt.fileio import sha256_file


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect") / "m"
    export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, output_dir=str(out), verify=False, engine=False))
    return out


@pytest.fixture
def copy(exported, tmp_path):
    return shutil.copytree(exported, tmp_path / "m")


def _inspect(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


def test_intact_export_and_onnx_exit_zero_with_a_readable_summary(exported):
    digest = sha256_file(exported / "model.onnx")
    for target in (exported, exported / "model.onnx"):
        res = _inspect(target)
        assert res.exit_code == 0, res.output
        assert digest in res.stdout.splitlines()[-1] or any(digest in line for line in res.stdout.splitlines())
        assert "{'" not in res.stdout and "{\"" not in res.stdout              # no dict reprs
    res = _inspect(exported)
    assert re.search(r"artifact\s+model\.onnx\s+ok\s", res.stdout)
    assert "width=4" in res.stdout and "weights random-init" in res.stdout


def test_json_is_machine_readable(exported):
    res = _inspect("--json", exported)
    info = json.loads(res.stdout)
    assert info["ok"] is True and info["problems"] == []
    assert [a["status"] for a in info["artifacts"]] == ["ok"]


@pytest.mark.parametrize("damage,needle", [
    ("truncate", "model.onnx: size"),
    ("flip", "model.onnx: sha256 does not match the manifest"),
    ("delete", "model.onnx: missing"),
])
def test_directory_inspection_checks_every_hash(copy, damage, needle):
    onnx = copy / "model.onnx"
    data = onnx.read_bytes()
    if damage == "truncate":
        onnx.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        onnx.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    else:
        onnx.unlink()
    res = _inspect(copy)
    assert res.exit_code == 1 and needle in res.output and "Traceback" not in res.output
    info = json.loads(_inspect("--json", copy).stdout)
    assert info["ok"] is False and any(needle in p for p in info["problems"])


def test_bad_files_exit_non_zero(copy, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "cut.onnx").write_bytes((copy / "model.onnx").read_bytes()[:4000])
    (loose / "random.onnx").write_bytes(os.urandom(4096))
    (loose / "notes.txt").write_text("hello")
    for name, needle in (("cut.onnx", "not a readable ONNX model"), ("random.onnx", "not a readable ONNX model"),
                         ("notes.txt", "not an artifact unetrt inspects")):
        res = _inspect(loose / name)
        assert res.exit_code == 1 and needle in res.output, (name, res.output)
    res = _inspect(loose)
    assert res.exit_code == 1 and "has no manifest.json" in res.output


def test_engine_whose_sha256_does_not_match_the_manifest(copy):
    engine = copy / "model.engine"
    engine.write_bytes(b"plan bytes")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["artifacts"].append({"path": "model.engine", "sha256": "0" * 64, "bytes": engine.stat().st_size})
    (copy / "manifest.json").write_text(json.dumps(manifest))
    res = _inspect(engine)
    assert res.exit_code == 1 and "model.engine: sha256 does not match the manifest" in res.output
    assert _inspect(copy).exit_code == 1


def _plan_header(recorded: int, tag: bytes = b"vtrt") -> bytes:
    """The 24-byte header of a serialised plan: tag, three 32-bit fields, the 64-bit plan size (TensorRT-RTX)."""
    import struct

    return tag + struct.pack("<IIIQ", 0, 2, 0, recorded)


@pytest.mark.parametrize("content, words", [
    (b"garbage, not a plan" * 20, "standalone.engine is not a TensorRT plan (it starts with b'garb'"),
    (b"vtrt\0\0", "standalone.engine is truncated: 6 bytes, shorter than a plan header (24 bytes)"),
    (_plan_header(4096) + b"\0" * 1000, "standalone.engine is truncated or damaged: its header records 4,096 bytes, "
                                        "the file has 1,024"),
])
def test_garbage_or_truncated_standalone_engine_fails_in_one_line(tmp_path, content, words):
    engine = tmp_path / "standalone.engine"
    engine.write_bytes(content)
    res = CliRunner().invoke(main, ["inspect", str(engine)])
    assert res.exit_code == 1, res.output
    assert words in res.output
    error = [line for line in res.output.splitlines() if line.startswith("error")]
    assert len(error) <= 1 and "Traceback" not in res.output


def test_whole_plan_header_passes(tmp_path):
    engine = tmp_path / "whole.engine"
    engine.write_bytes(_plan_header(1024) + b"\0" * 1000)
    from unetrt.artifacts.trt import plan_problem

    assert plan_problem(engine) is None


@pytest.mark.slow
def test_real_tensorrt_rtx_plan_intact_then_truncated(tmp_path):
    """A plan TensorRT-RTX really built passes; the same plan cut short fails with the truncation line."""
    pytest.importorskip("tensorrt_rtx")
    out = tmp_path / "m"
    export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, output_dir=str(out), verify=False, engine=True))
    plan = (out / "model.engine").read_bytes()
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "model.engine").write_bytes(plan)
    res = _inspect(alone / "model.engine")
    assert res.exit_code == 0, res.output
    (alone / "model.engine").write_bytes(plan[: len(plan) // 2])
    res = _inspect(alone / "model.engine")
    assert res.exit_code == 1 and f"its header records {len(plan):,} bytes, the file has {len(plan) // 2:,}" \
        in res.output
