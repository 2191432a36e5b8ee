"""Which file of an export runs, and on which backend: :func:`locate` and :func:`choose`.

:func:`locate` finds the file of an :class:`~unetrt.artifacts.refs.ArtifactRef` in an export directory
(and, unless told not to, checks that an engine can run on this machine); :func:`choose` walks the
backend registry's candidates through :meth:`Backend.fits` and :func:`locate`. ``load()``, the bench
(its cached exports and the file each row runs) and serving (the files a Triton repository gets) all
pick their artifact through these two functions.
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts.manifest import Manifest
from ..artifacts.refs import ArtifactRef
from ..errors import RunnerError
from . import backends as registry
from .backends import Backend

__all__ = ["locate", "choose", "file_backend"]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def locate(manifest: Manifest, directory: Path, ref: ArtifactRef, *, here: bool = True) -> tuple[Path | None, str | None]:
    """The file of ``ref`` in the export ``directory``, or why there is none.

    Args:
        manifest: The directory's manifest.
        directory: The export directory.
        ref: Which artifact.
        here: Also require that an engine can run on this machine (flavour, GPU, version); ``False``
            only checks that the file exists (a repository written here for another machine).

    Returns:
        ``(file, None)`` or ``(None, one-line reason)``.
    """
    directory = Path(directory)
    if ref.kind == "module":
        ckpt = manifest.model.checkpoint
        if ckpt is None or not Path(ckpt.path).is_file():
            return None, (f"no checkpoint file to run eagerly ({ckpt.path if ckpt else 'random-init export'}); "
                          f"load the checkpoint itself: load('model.pth', arch=...)")
        return Path(ckpt.path), None
    entries = manifest.entries(ref)
    if not entries:
        return None, f"the export has no {ref.label}"
    reason = None
    for entry in entries:
        file = directory / entry.path
        if not file.is_file():
            return None, f"{'engine ' if ref.kind == 'engine' else ''}{entry.path} listed in the manifest is missing"
        if ref.kind == "engine" and here:
            from .engine_choice import unusable_here

            reason = unusable_here(entry, directory)
        if reason is None:
            return file, None
    return None, reason


def choose(manifest: Manifest, directory: Path, backend: str = "auto", device: str = "auto",
           precision: str | None = None, *, cuda: bool | None = None) -> tuple[Backend, Path, list[str]]:
    """Pick ``(backend, file, notes)`` for an export directory.

    Args:
        manifest: The directory's manifest.
        directory: The export directory.
        backend: ``"auto"``, a family (``torch``/``ort``/``trt``) or a backend name.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        precision: Only artifacts of this precision (``None``: any, in preference order).
        cuda: Whether a CUDA GPU is visible (probed when ``None``).

    Raises:
        RunnerError: Nothing registered can run this export here (the message says why for each).
    """
    cuda = _cuda() if cuda is None else cuda
    candidates = registry.resolve(backend)
    if precision is not None:
        candidates = [b for b in candidates if b.precision == precision]
    elif not cuda or device == "cpu":
        candidates = sorted(candidates, key=lambda b: b.precision != "fp32")  # stable: FP32 first on a CPU
    skipped: list[str] = []
    for candidate in candidates:
        reason = candidate.fits(device, cuda=cuda)
        file = None
        if reason is None:
            file, reason = locate(manifest, directory, candidate.artifact)
        if reason is None and file is not None:
            return candidate, file, skipped
        skipped.append(f"{candidate.name}: {reason}")
    kinds = {c.kind for c in candidates}
    what = {"engine": "TensorRT engine", "onnx": "ONNX model", "module": "eager model"}.get(kinds.pop(), "backend") \
        if len(kinds) == 1 else "backend"
    wanted = f"backend {backend!r}" + (f" at {precision}" if precision else "") + f" on device {device!r}"
    raise RunnerError(f"no {what} can run from {directory} with {wanted} "
                      f"({'; '.join(skipped) or 'none registered'})",
                      "an artifact of the export that a registered, installed backend runs here",
                      "re-export with the artifact (--fp16, --engine) or choose another backend/device")


def file_backend(kind: str, backend: str, device: str, precision: str | None, cuda: bool, path: Path) -> Backend:
    """The backend for a single file of ``kind`` (eager for a checkpoint or module, even under ``auto``).

    Raises:
        RunnerError: No backend runs that kind of file on ``device``.
    """
    pool = registry.resolve(backend) if backend != "auto" else \
        [b for b in registry.backends() if b.auto or b.kind == "module"]
    candidates = [b for b in pool if b.kind == kind]
    if not candidates:
        raise RunnerError(f"backend {backend!r} cannot run a {path.suffix} file",
                          f"backend 'auto' or one that runs {kind} files", "drop backend= or pass the matching file")
    if kind == "module":
        candidates = [b for b in candidates if b.precision == (precision or "fp32")]
    skipped = []
    for candidate in candidates:
        reason = candidate.fits(device, cuda=cuda)
        if reason is None:
            return candidate
        skipped.append(f"{candidate.name}: {reason}")
    raise RunnerError(f"no backend can run {path.name} on device {device!r} ({'; '.join(skipped)})",
                      "an installed backend for this file type", "choose another device or install the backend")
