"""What a benchmark ran on (CPU, cores, GPU, library versions) and how much memory it used."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "machine_slug", "default_threads", "cuda_available", "PeakMemory"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def default_threads() -> int:
    """Cores this process may run on (its CPU affinity), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA GPU."""
    import torch

    return bool(torch.cuda.is_available())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gpu() -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count(),
            "memory_gb": round(props.total_memory / 2**30, 1), "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda}


def _libraries() -> dict[str, Any]:
    from ..artifacts.manifest import tool_versions

    versions = tool_versions()
    try:
        import onnxruntime

        versions["onnxruntime_providers"] = list(onnxruntime.get_available_providers())
    except ImportError:
        pass
    return versions


def machine_slug(cpu: str, cores: int, gpu: str | None = None) -> str:
    """A directory-safe name: ``amd-epyc-2c`` or ``nvidia-h100-80gb-hbm3``."""
    text = gpu or f"{cpu} {cores}c"
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "machine"


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores (and those usable by this process), memory, GPU, OS, library versions."""
    cpu, usable = _cpu_model(), default_threads()
    gpu = _gpu()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "memory_gb": _memory_gb(), "gpu": gpu,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "libraries": _libraries(), "slug": machine_slug(cpu, usable, gpu["name"] if gpu else None)}


def _vm_hwm_mb() -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _maxrss_mb() -> float | None:
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if platform.system() == "Darwin" else rss / 1024  # bytes on macOS, KiB on Linux


class PeakMemory:
    """Peak memory over a region: ``start()``, run, ``stop() -> (MiB, kind)``.

    CUDA: ``torch.cuda.max_memory_allocated`` after a reset (PyTorch's allocator only: TensorRT's
    activation memory and ONNX Runtime's CUDA arena are not in it). CPU: the process's peak
    resident set size (``VmHWM``), reset at ``start()`` through ``/proc/self/clear_refs`` where the
    kernel allows it. RSS is process-wide: weights, reference outputs and every library loaded
    so far count, not only the backend under test.

    Args:
        device: ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.kind = ""

    def start(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.kind = "cuda max allocated (PyTorch allocator)"
            return
        try:
            _CLEAR_REFS.write_text("5")  # Linux >= 4.0: reset VmHWM to the current RSS
            self.kind = "process peak RSS (VmHWM, reset per row; process-wide)"
        except OSError:
            self.kind = "process peak RSS since start (not resettable here; process-wide)"

    def stop(self) -> tuple[float | None, str]:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20, self.kind
        value = _vm_hwm_mb()
        if value is None:
            value = _maxrss_mb()
            self.kind = "process peak RSS since start (getrusage maxrss; process-wide)"
        return value, self.kind
