"""The benchmarked backends: a view of the runtime's backend registry plus the bench's device policy.

Nothing here defines a backend: :mod:`unetrt.runtime.backends` does, once, for ``load()``, predict and
the bench alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..artifacts import names as files
from ..errors import RunnerError
from ..runtime import backends as registry
from ..runtime.backends import Backend, RunOptions

__all__ = ["Backend", "BACKENDS", "parse_backends", "unavailable_reason", "make_runner", "backend_notes",
           "eager_device", "artifact_key", "artifact_file"]


class _RegistryView(Mapping):
    """``name -> Backend`` over the live registry (a backend registered later shows up here too)."""

    def __getitem__(self, name: str) -> Backend:
        if name not in registry.names():
            raise KeyError(name)
        return registry.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())


BACKENDS: Mapping[str, Backend] = _RegistryView()


def parse_backends(value: str | Sequence[str]) -> list[str]:
    """``"eager,ort"`` or a list -> validated backend names in the given order, duplicates dropped.

    Raises:
        UnetrtError: An unknown name (the message lists the valid ones) or an empty list.
    """
    return [b.name for b in registry.parse_names(value)]


def unavailable_reason(backend: Backend, *, cuda: bool, device: str = "auto") -> str | None:
    """Why ``backend`` cannot run here under the run's device policy (``None`` when it can).

    Args:
        backend: The backend.
        cuda: Whether a CUDA GPU is visible.
        device: ``"cpu"`` excludes GPU-only backends, ``"cuda"`` excludes CPU-only ones.
    """
    if device == "cpu" and backend.gpu_only:
        return "--device cpu excludes GPU backends"
    if device == "cuda" and "cuda" not in backend.devices:
        return "--device cuda excludes CPU-only backends"
    reason = backend.reason_unavailable(cuda=cuda)
    if reason and backend.kind == "module" and backend.gpu_only and not cuda:
        reason += f"; {backend.name} is CUDA-only"
    return reason


def backend_notes(backend: Backend, device: str) -> list[str]:
    """Caveats a reader of ``backend``'s rows on ``device`` should know."""
    notes = [f"{backend.name}: {n}" if not n.startswith(backend.name) else n for n in backend.notes]
    if backend.kind == "module" and backend.precision == "fp32" and device == "cuda":
        import torch

        if torch.backends.cudnn.allow_tf32:
            notes.append("eager FP32 on CUDA: cuDNN may use TF32 for convolutions "
                         "(torch.backends.cudnn.allow_tf32 is True, PyTorch's default)")
    return notes


def eager_device(backend: Backend, cuda: bool, device: str) -> str:
    """Where a backend runs under the ``device`` policy (multi-device backends: CUDA when allowed)."""
    if backend.gpu_only:
        return "cuda"
    if "cuda" in backend.devices and cuda and device != "cpu":
        return "cuda"
    return "cpu"


def artifact_key(backend: Backend) -> str | None:
    """The artifact-cache key of what ``backend`` runs (``None`` for eager): ``onnx``, ``onnx_fp16``, ..."""
    if backend.kind == "module":
        return None
    variant = (backend.artifact or backend.precision).replace("-", "_")
    return backend.kind if variant == "fp32" else f"{backend.kind}_{variant}"


def artifact_file(key: str) -> str:
    """The file name of an artifact-cache key."""
    kind, _, precision = key.partition("_")
    precision = precision.replace("_", "-")
    return files.engine_name(precision or "fp32") if kind == "engine" else files.onnx_name(precision or "fp32")


def make_runner(backend: Backend, *, model: Any = None, path: Path | None = None, manifest: Any = None,
                device: str = "cpu", threads: int | None = None, ort_level: str = "all",
                cache_dir: Path | None = None):
    """An inactive runner for ``backend``.

    Args:
        backend: The backend.
        model: The ``nn.Module`` (eager backends).
        path: The ONNX file or engine (other backends).
        manifest: The export manifest of ``path``.
        device: Eager device (``"cpu"``/``"cuda"``).
        threads: CPU threads of CPU backends.
        ort_level: ONNX Runtime graph optimisation level.
        cache_dir: Engine-cache directory of backends that build engines lazily.

    Raises:
        RunnerError, MissingDependencyError: The runner cannot be built.
    """
    run = RunOptions(threads=threads, ort_level=ort_level, cache_dir=str(cache_dir) if cache_dir else None)
    if backend.kind == "module":
        return backend.open(model, manifest=manifest, device=device, run=run)
    if path is None:
        raise RunnerError(f"{backend.name}: no {artifact_key(backend)} artifact to run", "an exported file",
                          "prepare it with unetrt.bench.artifacts.ArtifactCache")
    return backend.open(path, manifest=manifest, run=run)
