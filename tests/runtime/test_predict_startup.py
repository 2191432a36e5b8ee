"""unet-predict on ONNX Runtime never imports torch (2 s of start-up): the CUDA probe asks the driver."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from unetrt.runtime import cuda_probe


def test_cli_predict_on_ort_imports_no_torch(export_dir, tmp_path):
    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(img)
    code = ("import sys\nfrom unetrt.cli.predict import predict_cmd\n"
            f"try:\n    predict_cmd(['-m', {str(export_dir)!r}, '-i', {str(img)!r}, '-o', {str(tmp_path / 'm.png')!r}], standalone_mode=False)\n"
            "finally:\n    print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "NO-TORCH", res.stdout + res.stderr
    assert (tmp_path / "m.png").is_file()


def test_probe_uses_torch_once_imported(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cuda_probe.cuda_available() is True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cuda_probe.cuda_available() is False


def test_probe_without_torch_asks_the_driver(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")
    probe = cuda_probe.driver_device_count
    probe.cache_clear()

    def no_driver(name, *a, **kw):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(cuda_probe.ctypes, "CDLL", no_driver)
    try:
        assert cuda_probe.driver_device_count() == 0 and cuda_probe.cuda_available() is False
        cuda_probe.driver_device_count.cache_clear()
        monkeypatch.setattr(cuda_probe, "driver_device_count", lambda: 2)
        monkeypatch.setattr(cuda_probe, "_torch_has_cuda", lambda: False)
        assert cuda_probe.cuda_available() is False          # a CPU build of torch cannot reach the GPU
        monkeypatch.setattr(cuda_probe, "_torch_has_cuda", lambda: True)
        assert cuda_probe.cuda_available() is True
    finally:
        probe.cache_clear()


def test_probe_reads_the_installed_torch_build():
    import torch

    assert cuda_probe._torch_has_cuda() is (torch.version.cuda is not None)


def test_probe_agrees_with_torch_here():
    import torch

    cuda_probe.driver_device_count.cache_clear()
    code = "from unetrt.runtime.cuda_probe import cuda_available; print(cuda_available())"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == str(torch.cuda.is_available())
