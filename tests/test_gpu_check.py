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
                  {"path": "model.engine", "status": "not runnable here (load() falls back to ONNX)",
                   "reason": "engine model.engine skipped: built for SM80, ..., this GPU is SM90"}]},
                  {"flavour": "tensorrt", "ok": True, "engines": [
                      {"path": "model.engine", "status": "ok", "parity": {"max_abs": 2e-5},
                       "parity_graph": {"max_abs": 2e-5}}]}],
              "bench": {"no-transfers": {"ok": True, "rows": [
                  {"backend": "trt", "height": 256, "width": 256, "latency_ms": {"p50": 0.412},
                   "parity_passed": True, "status": "ok"}]}},
              "ok": True, "seconds": 301.2}
    text = gpu_check.markdown(report)
    assert "NVIDIA H200 (SM 9.0)" in text and "40 run, 0 failed" in text
    assert "| tensorrt-rtx | model.engine | not runnable here (load() falls back to ONNX) engine model.engine " \
           "skipped: built for SM80, ..., this GPU is SM90 |" in text
    assert "| tensorrt | model.engine | ok  | 2e-05 | 2e-05 |" in text
    assert "| trt | 256x256 | 0.412 | True ok |" in text and "Overall: PASS in 301.2 s" in text
