"""The benchmarked backends: what each one runs, what it needs, and how to open its runner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunnerError, UnetrtError

__all__ = ["Backend", "BACKENDS", "parse_backends", "unavailable_reason", "make_runner", "backend_notes",
           "eager_device"]


@dataclass(frozen=True)
class Backend:
    """One benchmark backend.

    Attributes:
        name: CLI name (``eager``, ``ort-fp16``, ...).
        family: ``"eager"``, ``"ort"`` or ``"trt"``.
        precision: ``"fp32"`` or ``"fp16"``: selects the parity tolerance.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (eager: CUDA when present and allowed).
        artifact: What it runs from the artifact cache (``"onnx"``, ``"onnx_fp16"``, ``"engine"``,
            ``"engine_fp16"``), ``None`` for eager.
        providers: ONNX Runtime provider chain (``"cpu"``, ``"cuda"``, ``"tensorrt"``).
        description: One line for help texts and reports.
    """

    name: str
    family: str
    precision: str
    device: str
    artifact: str | None
    providers: str | None
    description: str


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("eager", "eager", "fp32", "auto", None, None, "PyTorch eager FP32 (CUDA when present, else CPU)"),
    Backend("eager-fp16", "eager", "fp16", "cuda", None, None, "PyTorch eager FP16 (CUDA only)"),
    Backend("ort", "ort", "fp32", "cpu", "onnx", "cpu", "ONNX Runtime CPU, FP32 ONNX"),
    Backend("ort-fp16", "ort", "fp16", "cpu", "onnx_fp16", "cpu", "ONNX Runtime CPU, FP16 ONNX (FP32 I/O)"),
    Backend("ort-cuda", "ort", "fp32", "cuda", "onnx", "cuda", "ONNX Runtime CUDA EP, FP32 ONNX"),
    Backend("ort-trt", "ort", "fp32", "cuda", "onnx", "tensorrt", "ONNX Runtime TensorRT EP, FP32 ONNX"),
    Backend("trt", "trt", "fp32", "cuda", "engine", None, "TensorRT engine, FP32"),
    Backend("trt-fp16", "trt", "fp16", "cuda", "engine_fp16", None, "TensorRT engine, FP16"),
)}

_ORT_PROVIDER = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def parse_backends(value: str | Sequence[str]) -> list[str]:
    """``"eager,ort"`` or a list -> validated names in the given order, duplicates dropped.

    Raises:
        UnetrtError: An unknown name (the message lists the valid ones) or an empty list.
    """
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        what = f"unknown backend(s) {', '.join(repr(n) for n in unknown)}" if unknown else "no backend given"
        raise UnetrtError(what, f"comma-separated names among {', '.join(BACKENDS)}",
                          "e.g. --backends eager,ort,ort-fp16")
    return list(dict.fromkeys(names))


def _ort_reason(backend: Backend, cuda: bool) -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return "onnxruntime is not installed (pip install onnxruntime)"
    if backend.providers == "cpu":
        return None
    provider = _ORT_PROVIDER[backend.providers]
    if provider not in onnxruntime.get_available_providers():
        return (f"this onnxruntime build has no {provider} (pip install 'unetrt[gpu]': onnxruntime-gpu "
                f"replaces onnxruntime)")
    return None if cuda else "no CUDA GPU visible"


def unavailable_reason(backend: Backend, *, cuda: bool, device: str = "auto") -> str | None:
    """Why ``backend`` cannot run here (``None`` when it can).

    Args:
        backend: The backend.
        cuda: Whether a CUDA GPU is visible.
        device: The run's device policy: ``"cpu"`` excludes GPU backends, ``"cuda"`` excludes
            CPU-only ones.
    """
    gpu_only = backend.device == "cuda"
    if device == "cpu" and gpu_only:
        return "--device cpu excludes GPU backends"
    if device == "cuda" and backend.device == "cpu":
        return "--device cuda excludes CPU-only backends"
    if backend.family == "ort":
        return _ort_reason(backend, cuda)
    if gpu_only and not cuda:
        return f"needs a CUDA GPU (none visible){'; eager FP16 is CUDA-only' if backend.family == 'eager' else ''}"
    if backend.family == "trt":
        from ..artifacts.trt import import_tensorrt

        try:
            import_tensorrt("auto")
        except UnetrtError as exc:
            return f"TensorRT not usable: {exc}"
    return None


def backend_notes(backend: Backend, device: str) -> list[str]:
    """Caveats a reader of ``backend``'s rows on ``device`` should know."""
    notes = []
    if backend.name == "ort-fp16" and device == "cpu":
        notes.append("ort-fp16 on CPU: ONNX Runtime's CPU provider has few FP16 kernels and runs most of the graph "
                     "through inserted casts, so this row measures FP16 accuracy, not FP16 speed")
    if backend.family == "eager" and backend.precision == "fp32" and device == "cuda":
        import torch

        if torch.backends.cudnn.allow_tf32:
            notes.append("eager FP32 on CUDA: cuDNN may use TF32 for convolutions "
                         "(torch.backends.cudnn.allow_tf32 is True, PyTorch's default)")
    if backend.family == "ort" and device == "cuda":
        notes.append(f"{backend.name}: host<->device copies always timed (OrtRunner feeds host arrays); peak memory "
                     "excludes ONNX Runtime's own CUDA allocations")
    if backend.family == "trt":
        notes.append(f"{backend.name}: peak memory excludes TensorRT's activation memory (see the runner's note)")
    return notes


def eager_device(backend: Backend, cuda: bool, device: str) -> str:
    """Where an eager backend runs under the ``device`` policy."""
    if backend.device == "cuda":
        return "cuda"
    return "cuda" if cuda and device != "cpu" else "cpu"


def make_runner(backend: Backend, *, model: Any = None, path: Path | None = None,
                manifest: Mapping[str, Any] | None = None, device: str = "cpu", threads: int | None = None,
                ort_level: str = "all", ort_trt_cache: Path | None = None):
    """An inactive runner for ``backend``.

    Args:
        backend: The backend.
        model: The ``nn.Module`` (eager backends).
        path: The ONNX file or engine (other backends).
        manifest: The export manifest of ``path``.
        device: Eager device (``"cpu"``/``"cuda"``).
        threads: ONNX Runtime intra-op threads.
        ort_level: ONNX Runtime graph optimisation level.
        ort_trt_cache: Engine-cache directory of the ONNX Runtime TensorRT EP.

    Raises:
        RunnerError, MissingDependencyError: The runner cannot be built.
    """
    from ..runtime import OrtRunner, TorchRunner, TrtRunner

    if backend.family == "eager":
        return TorchRunner(model, device=device, precision=backend.precision, name=backend.name)
    if path is None:
        raise RunnerError(f"{backend.name}: no {backend.artifact} artifact to run", "an exported file",
                          "prepare it with unetrt.bench.artifacts.ArtifactCache")
    if backend.family == "ort":
        trt_options = {"engine_cache_path": str(ort_trt_cache)} if backend.providers == "tensorrt" and \
            ort_trt_cache else None
        return OrtRunner(path, providers=backend.providers, threads=threads, graph_optimization_level=ort_level,
                         trt_options=trt_options, manifest=manifest, name=backend.name)
    return TrtRunner(path, manifest=manifest, name=backend.name)
