"""CUDA / TensorRT EP sessions are created only after the pip-installed GPU libraries were loaded
(``onnxruntime.preload_dlls`` for CUDA/cuDNN/cuBLAS, ``tensorrt_libs`` for libnvinfer/libnvonnxparser)."""

from __future__ import annotations

import ctypes
import json
import sys
import types
from pathlib import Path

import pytest

from unetrt.errors import RunnerError
from unetrt.runtime import ort as ort_runtime
from unetrt.runtime.ort import TRT_EP_LIBRARIES, OrtRunner, load_gpu_libraries

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ort_ep_options.json"


@pytest.fixture
def gpu_ort(monkeypatch, tmp_path):
    """The real onnxruntime with GPU providers listed and preload_dlls recorded; a tensorrt_libs folder;
    ctypes.CDLL recorded."""
    import onnxruntime

    events = []
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda **kw: events.append(("preload_dlls", kw)), raising=False)
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    libs = tmp_path / "tensorrt_libs"
    libs.mkdir()
    for name in TRT_EP_LIBRARIES:
        (libs / name).write_bytes(b"\x7fELF")
    monkeypatch.setitem(sys.modules, "tensorrt_libs", types.SimpleNamespace(__path__=[str(libs)]))
    monkeypatch.setattr(ctypes, "CDLL", lambda path, mode=0: events.append(("CDLL", Path(path).name, mode)))
    return events


def test_trt_ep_libraries_are_the_wheels():
    assert list(TRT_EP_LIBRARIES) == json.loads(FIXTURE.read_text())["TensorrtExecutionProvider"]["links"]


def test_libraries_load_before_the_session(gpu_ort, monkeypatch, tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")

    def session(*a, **kw):
        gpu_ort.append(("make_session",))
        raise RuntimeError("stop here")

    monkeypatch.setattr(ort_runtime, "make_session", session)
    with pytest.raises(RunnerError, match="ONNX Runtime cannot load"):
        OrtRunner(onnx, providers="tensorrt").activate()
    assert gpu_ort == [("preload_dlls", {"cuda": True, "cudnn": True, "msvc": False}),
                       ("CDLL", "libnvinfer.so.10", ctypes.RTLD_GLOBAL),
                       ("CDLL", "libnvonnxparser.so.10", ctypes.RTLD_GLOBAL), ("make_session",)]
    gpu_ort.clear()
    with pytest.raises(RunnerError):
        OrtRunner(onnx, providers="cuda").activate()
    assert gpu_ort == [("preload_dlls", {"cuda": True, "cudnn": True, "msvc": False}), ("make_session",)]
    gpu_ort.clear()
    with pytest.raises(RunnerError):
        OrtRunner(onnx, providers="cpu").activate()
    assert gpu_ort == [("make_session",)]


def test_missing_tensorrt_libs_is_said(gpu_ort, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt_libs", None)
    notes = load_gpu_libraries(["TensorrtExecutionProvider"])
    assert notes == ["tensorrt_libs not installed: libnvinfer.so.10, libnvonnxparser.so.10 must be on the loader "
                     "path (pip install 'unetrt[gpu]')"]
    libs = tmp_path / "other"
    (libs).mkdir()
    (libs / "libnvinfer.so.11").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorrt_libs", types.SimpleNamespace(__path__=[str(libs)]))
    notes = load_gpu_libraries(["TensorrtExecutionProvider"])
    assert len(notes) == 2 and notes[0].startswith("libnvinfer.so.10 not in") and "cannot load" in notes[0]
