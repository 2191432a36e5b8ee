"""The benchmarked backends: a view of the runtime's backend registry plus the bench's device policy.

Nothing here defines a backend: :mod:`unetrt.runtime.backends` does, once, for ``load()``, predict and
the bench alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import RunnerError
from ..runtime import backends as registry
from ..runtime.backends import Backend, RunOptions

__all__ = ["Backend", "BACKENDS", "parse_backends", "unavailable_reason", "make_runner", "backend_notes"]


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
    reason = backend.fits(device, cuda=cuda, spelled="--device {}")
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
        raise RunnerError(f"{backend.name}: no {backend.artifact.key} artifact to run", "an exported file",
                          "prepare it with unetrt.bench.artifacts.ArtifactCache")
    return backend.open(path, manifest=manifest, run=run)
