"""scripts/gpu_check.py on a machine without a GPU: it says so, writes its report, exits 1; the Markdown report
renders every section from a recorded result."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_no_gpu_reports_and_fails(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "r")]) == 1
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["ok"] is False and report["reason"] == "no CUDA GPU"
    assert report["environment"]["cuda_available"] is False
    assert "No CUDA GPU visible" in (tmp_path / "r" / "report.md").read_text()
    assert "no CUDA GPU visible to PyTorch" in capsys.readouterr().err


def test_markdown_report(gpu_check):
    report = {"environment": {"gpu": "NVIDIA H200", "compute_capability": "9.0", "torch": "2.13.0",
                              "torch_cuda": "13.0", "onnxruntime": "1.31.1",
                              "tensorrt": {"tensorrt": "10.16.1.11", "tensorrt-rtx": "1.7.1.116"}},
              "gpu_tests": {"ok": True, "tests": 40, "failures": 0, "errors": 0, "skipped": 2, "seconds": 88.0},
              "smoke": [{"flavour": "tensorrt-rtx", "ok": True, "engines": [
                  {"path": "model.engine", "status": "not runnable here", "ok": True,
                   "reason": "engine model.engine skipped: built for SM80, ..., this GPU is SM90"}]},
                  {"flavour": "tensorrt", "ok": True, "engines": [
                      {"path": "model.engine", "status": "ok", "ok": True, "parity": {"max_abs": 2e-5},
                       "parity_graph": {"max_abs": 2e-5}}]}],
              "bench": {"no-transfers": {"ok": True, "rows": [
                  {"backend": "trt", "height": 256, "width": 256, "latency_ms": {"p50": 0.412},
                   "parity_passed": True, "status": "ok"}]}},
              "ok": True, "seconds": 301.2}
    text = gpu_check.markdown(report)
    assert "NVIDIA H200 (SM 9.0)" in text and "40 run, 0 failed" in text
    assert "| tensorrt-rtx | model.engine | not runnable here engine model.engine " \
           "skipped: built for SM80, ..., this GPU is SM90 |  |  | ok |" in text
    assert "| tensorrt | model.engine | ok  | 2e-05 | 2e-05 | ok |" in text
    assert "| trt | 256x256 | 0.412 | True ok |" in text and "Overall: PASS in 301.2 s" in text


# --- the verdict: what counts as a pass (no GPU needed: recorded results in, failures out) ---------------

H200 = {"gpu": "NVIDIA H200", "compute_capability": "9.0", "onnxruntime": "1.31.1",
        "ort_providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        "tensorrt": {"tensorrt": "10.16.1.11", "tensorrt-rtx": "1.7.1.116"},
        "rtx_targets": ["SM75", "SM80", "SM86", "SM89", "SM120", "SM121"],
        "packages": {"onnxruntime-gpu": "1.31.1", "tensorrt-cu13": "10.16.1.11", "tensorrt-rtx": "1.7.1.116"}}


def _engine(gpu_check, flavour, path, expected, **row):
    row = {"flavour": flavour, "path": path, "precision": "fp32", **row}
    row["ok"], row["failure"] = gpu_check.engine_verdict(row, expected)
    return row


def _bench_rows(backends, **override):
    return [{"backend": b, "height": 256, "width": 256, "status": "ok", "parity_passed": True, **override.get(b, {})}
            for b in backends]


def test_expectations_follow_the_gpu(gpu_check):
    h200 = gpu_check.expectations(H200)
    assert h200["flavours"]["tensorrt"] is None
    assert "has no SM90 target" in h200["flavours"]["tensorrt-rtx"] and h200["failures"] == []
    assert h200["backends"] == ["eager", "eager-fp16", "ort-cuda", "ort-cuda-fp16", "ort-trt", "trt", "trt-fp16"]
    rtx4090 = gpu_check.expectations({**H200, "compute_capability": "8.9"})
    assert rtx4090["flavours"] == {"tensorrt": None, "tensorrt-rtx": None}
    cpu_ort = gpu_check.expectations({**H200, "ort_providers": ["CPUExecutionProvider"], "tensorrt": {},
                                      "packages": {"onnxruntime": "1.32.0"}})
    assert any("this is not the [gpu] set" in f for f in cpu_ort["failures"])
    assert any("has no CUDAExecutionProvider" in f for f in cpu_ort["failures"])
    assert cpu_ort["backends"] == list(gpu_check.ORT_BACKENDS)  # no flavour: the TensorRT rows cannot be expected
    both = gpu_check.expectations({**H200, "packages": {**H200["packages"], "onnxruntime": "1.32.0"}})
    assert any("both onnxruntime and onnxruntime-gpu" in f for f in both["failures"])
    no_trt = gpu_check.expectations({**H200, "tensorrt": {"tensorrt-rtx": "1.7.1.116"}})
    assert any("tensorrt-cu13 from unetrt[gpu]) does not import" in f for f in no_trt["failures"])


def test_a_skipped_expected_engine_fails_and_verdicts_do_not_carry_over(gpu_check):
    expect = gpu_check.expectations(H200)
    good = {"passed": True, "max_abs": 1e-5}
    engines = [_engine(gpu_check, "tensorrt", "model.engine", None, status="failed", parity={"passed": False,
                                                                                            "max_abs": 0.3},
                       parity_graph=good),
               _engine(gpu_check, "tensorrt", "model_fp16.engine", None, status="ok", parity=good, parity_graph=good)]
    assert [e["ok"] for e in engines] == [False, True]  # the FP16 engine's pass does not hide the FP32 failure
    skipped = _engine(gpu_check, "tensorrt-rtx", "model.engine", expect["flavours"]["tensorrt-rtx"],
                      status="not runnable here", reason="built for SM80..., this GPU is SM90")
    assert skipped["ok"] is True  # RTX on SM90: an expected skip
    report = {"expectations": expect, "smoke": [{"flavour": "tensorrt", "engines": engines},
                                                 {"flavour": "tensorrt-rtx", "engines": [skipped]}],
              "gpu_tests": {"ok": True}, "bench": {}}
    failures = gpu_check.verdict(report)
    assert failures == ["tensorrt model.engine (fp32): parity: max abs 0.3"]

    on_ada = gpu_check.expectations({**H200, "compute_capability": "8.9"})
    not_run = _engine(gpu_check, "tensorrt-rtx", "model.engine", None, status="not runnable here",
                      reason="tensorrt-rtx is not installed")
    report = {"expectations": on_ada, "smoke": [{"flavour": "tensorrt", "engines": engines[1:]},
                                                 {"flavour": "tensorrt-rtx", "engines": [not_run]}]}
    failures = gpu_check.verdict(report)
    assert "tensorrt-rtx model.engine (fp32): expected to run on this GPU but skipped: tensorrt-rtx is not " \
           "installed" in failures
    assert "tensorrt-rtx: no engine ran on this GPU" in failures
    assert gpu_check.verdict({"expectations": on_ada, "smoke": [{"flavour": "tensorrt", "engines": engines[1:]}]}) \
        == ["tensorrt-rtx: expected here, not checked"]


def test_expected_bench_backends_must_run_and_pass(gpu_check):
    expect = gpu_check.expectations(H200)
    smoke = [{"flavour": "tensorrt", "engines": [{"ok": True, "status": "ok"}]}]
    rows = _bench_rows(expect["backends"], **{"ort-trt": {"status": "skipped: this onnxruntime build has no "
                                                                    "TensorrtExecutionProvider"},
                                              "trt-fp16": {"parity_passed": False, "parity_reason": "max abs 0.5"}})
    rows.append({"backend": "ort", "height": 256, "width": 256, "status": "skipped: cpu", "parity_passed": None})
    report = {"expectations": expect, "smoke": smoke, "bench": {"no-transfers": {"rows": rows},
                                                                "with-transfers": {"rows": None, "returncode": -1}}}
    assert gpu_check.verdict(report) == [
        "bench (no-transfers): ort-trt 256x256: skipped: this onnxruntime build has no TensorrtExecutionProvider",
        "bench (no-transfers): trt-fp16 256x256: ok, parity: max abs 0.5",
        "bench (with-transfers): no rows (return code -1)"]
    clean = {"expectations": expect, "smoke": smoke, "bench": {"x": {"rows": _bench_rows(expect["backends"])}}}
    assert gpu_check.verdict(clean) == []


def test_gpu_check_installs_the_gpu_set_in_its_own_venv():
    text = (ROOT / "Makefile").read_text()
    target = text.split("\ngpu-check:", 1)[1].split("\n\n", 1)[0]
    assert "$(GPU_VENV)/.installed-gpu" in target and "$(GPU_VENV)/bin/python scripts/gpu_check.py" in target
    recipe = text.split("$(GPU_VENV)/.installed-gpu:", 1)[1].split("\n\n", 1)[0]
    assert "-e '.[gpu,rtx,dev]'" in recipe and "cpu" not in recipe.split("-e", 1)[1]
    assert "GPU_VENV ?= .venv-gpu" in text
