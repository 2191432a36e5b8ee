"""Is a CUDA GPU visible? Answered without importing torch (2 s of start-up on a CPU-only ONNX Runtime run).

When torch is already imported its answer is used. Otherwise the CUDA driver library is asked directly
(``cuInit`` + ``cuDeviceGetCount`` through :mod:`ctypes`, which honours ``CUDA_VISIBLE_DEVICES``): no
driver library means no GPU. A GPU is only reported usable when an installed torch was built with CUDA
(read from its ``version.py`` without importing it), since the GPU runners reach the device through torch.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import re
import sys
from pathlib import Path

__all__ = ["cuda_available", "driver_device_count"]

_DRIVER_LIBS = ("nvcuda.dll",) if os.name == "nt" else ("libcuda.so.1", "libcuda.so", "libcuda.dylib")


@functools.lru_cache(maxsize=1)
def driver_device_count() -> int:
    """CUDA devices the driver reports (0 without a driver library, or when ``cuInit`` fails)."""
    for name in _DRIVER_LIBS:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return 0
        except AttributeError:
            return 0
        return int(count.value)
    return 0


def _torch_has_cuda() -> bool | None:
    """Whether the installed torch is a CUDA build, from ``torch/version.py`` (``None``: no torch installed)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    version = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^cuda\s*(?::[^=]*)?=\s*(.+)$", text, re.MULTILINE)
    return match is not None and match.group(1).strip() not in ("None", "")


def cuda_available() -> bool:
    """``torch.cuda.is_available()`` when torch is imported; else the driver's device count, for a CUDA
    build of torch (or no torch at all)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "cuda"):
        return bool(torch.cuda.is_available())
    if driver_device_count() == 0:
        return False
    return _torch_has_cuda() is not False
