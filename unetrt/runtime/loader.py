"""``load()``: the right runner for a model file, an export directory or an ``nn.Module``.

Every choice goes through the backend registry (:mod:`unetrt.runtime.backends`): a directory is read
through its typed manifest, and the first registered backend that can run here, on the requested
device and precision, and whose artifact the export has, wins. What was skipped and why is listed in
``runner.notes``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..artifacts import names
from ..artifacts.manifest import Manifest
from ..errors import RunnerError
from ..fileio import sha256_file
from . import backends as registry
from .backends import Backend
from .base import Runner

__all__ = ["load", "choose", "recorded_sha256"]

_KINDS = {".onnx": "onnx", ".engine": "engine", ".plan": "engine", ".pth": "module", ".pt": "module"}
_DEVICES = ("auto", "cpu", "cuda")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def recorded_sha256(manifest: Manifest, name: str, kind: str) -> str | None:
    """The sha256 the manifest records for the artifact file ``name`` (``None`` when not listed)."""
    recorded = manifest.sha256_of(name)
    if recorded is None and kind == "module" and manifest.model.checkpoint is not None:
        return manifest.model.checkpoint.sha256
    return recorded


def _matching_manifest(path: Path, kind: str, verify: bool,
                       manifest: Manifest | None = None) -> tuple[Manifest | None, list[str]]:
    """The manifest describing ``path`` (beside it, or given) after the sha256 check, and notes."""
    if manifest is None:
        beside = path.parent / names.MANIFEST
        if not beside.is_file():
            return None, [f"no {names.MANIFEST} beside {path.name}: input sizes are checked against the model's own "
                          f"dims only"]
        manifest = Manifest.read(beside)
    recorded = recorded_sha256(manifest, path.name, kind)
    if recorded is None:
        if kind == "module":
            return manifest, [f"{names.MANIFEST} records no checkpoint: {path.name} is loaded into its architecture "
                              f"without a sha256 check"]
        return None, [f"{names.MANIFEST} beside {path.name} does not list it: manifest ignored"]
    if verify:
        actual = sha256_file(path)
        if actual != recorded:
            raise RunnerError(f"manifest does not match the model file {path.name} (sha256 {actual[:12]}... != "
                              f"{recorded[:12]}... recorded)", "the file the manifest was written for",
                              "re-export (unet-export ... -o DIR --force) or remove the stale manifest.json")
    return manifest, []


def _device_fits(backend: Backend, device: str, cuda: bool) -> str | None:
    """Why ``backend`` does not fit the device policy (``None`` when it does)."""
    if device == "cpu" and "cpu" not in backend.devices:
        return "device='cpu' excludes GPU backends"
    if device == "cuda" and "cuda" not in backend.devices:
        return "device='cuda' excludes CPU-only backends"
    return backend.reason_unavailable(cuda=cuda)


def _artifact(backend: Backend, manifest: Manifest, directory: Path) -> tuple[Path | None, str | None]:
    """The file ``backend`` would run from an export directory, or why there is none."""
    if backend.kind == "module":
        ckpt = manifest.model.checkpoint
        if ckpt is None or not Path(ckpt.path).is_file():
            return None, (f"no checkpoint file to run eagerly ({ckpt.path if ckpt else 'random-init export'}); "
                          f"load the checkpoint itself: load('model.pth', arch=...)")
        return Path(ckpt.path), None
    if backend.kind == "engine":
        entries = [e for e in manifest.engines if e.precision == backend.precision]
        if not entries:
            return None, f"the export has no {backend.precision} engine"
        for entry in entries:
            file = directory / entry.path
            if not file.is_file():
                return None, f"engine {entry.path} listed in the manifest is missing"
            reason = _engine_reason(entry, directory)
            if reason is None:
                return file, None
        return None, reason
    name = manifest.onnx_file(backend.artifact or backend.precision)
    if name is None:
        return None, f"the export has no {backend.artifact or backend.precision} ONNX"
    if not (directory / name).is_file():
        return None, f"{name} listed in the manifest is missing"
    return directory / name, None


def _engine_reason(entry: Any, directory: Path) -> str | None:
    """Why an engine of the manifest cannot run here (``None`` when it can): flavour installed, GPU among
    its targets, loadable version (:func:`unetrt.runtime.engine_choice.engine_unusable_reason`)."""
    from dataclasses import asdict, is_dataclass

    from .engine_choice import engine_unusable_reason, installed_flavours, probe_gpu_cc

    data = asdict(entry) if is_dataclass(entry) else dict(entry)
    return engine_unusable_reason(data, directory, gpu_cc=probe_gpu_cc(), installed=installed_flavours())


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
        reason = _device_fits(candidate, device, cuda)
        file = None
        if reason is None:
            file, reason = _artifact(candidate, manifest, directory)
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


def _file_backend(kind: str, backend: str, device: str, precision: str | None, cuda: bool,
                  path: Path) -> Backend:
    """The backend for a single file of ``kind`` (eager for a checkpoint or module, even under ``auto``)."""
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
        reason = _device_fits(candidate, device, cuda)
        if reason is None:
            return candidate
        skipped.append(f"{candidate.name}: {reason}")
    raise RunnerError(f"no backend can run {path.name} on device {device!r} ({'; '.join(skipped)})",
                      "an installed backend for this file type", "choose another device or install the backend")


def load(path_or_module: Any, backend: str = "auto", device: str = "auto", *, precision: str | None = None,
         verify: bool = True, **kw: Any) -> Runner:
    """Open a runner for a model (inactive; use ``with load(...) as runner:``).

    By file type: ``.pth``/``.pt`` -> eager (architecture from a manifest beside it or ``arch=``),
    ``.onnx`` -> ONNX Runtime, ``.engine``/``.plan`` -> TensorRT. A directory is read through its
    ``manifest.json``: the first registered backend (see ``unet-bench --help``) that runs on this
    machine and whose artifact the export has — an engine on a GPU, else the ONNX on ONNX Runtime (FP16
    preferred on a GPU, FP32 on a CPU, unless ``precision`` says). A manifest beside the file is checked
    against the file's sha256 and exposed as ``runner.manifest``; what was chosen or skipped is listed in
    ``runner.notes``.

    Args:
        path_or_module: File, export directory or ``nn.Module``.
        backend: ``"auto"``, a family (``"torch"``, ``"ort"``, ``"trt"``) or a registered backend name.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        precision: ``"fp32"``/``"fp16"``/``"int8"`` artifact (or eager precision); ``None`` picks.
        verify: Check the artifact's sha256 against the manifest.
        **kw: Passed to the runner (e.g. ``threads``, ``cuda_graph``, ``arch``).

    Raises:
        RunnerError: Missing file, unknown type, manifest/sha256 mismatch, nothing runnable.
        ManifestError: The manifest is invalid, or of an unknown or newer schema version.
    """
    if device not in _DEVICES:
        raise RunnerError(f"device={device!r}", "device in auto/cpu/cuda", "fix the device argument")
    try:
        registry.resolve(backend)
    except Exception as exc:
        raise RunnerError(f"backend={backend!r} is not registered", f"auto, torch, ort, trt or one of "
                          f"{', '.join(registry.names())}", "fix the backend argument") from exc
    cuda = _cuda()
    if device == "cuda" and not cuda:
        raise RunnerError("device='cuda' but no CUDA GPU is visible to PyTorch", "an NVIDIA GPU", "use device='cpu'")
    from torch import nn

    manifest = kw.pop("manifest", None)
    if isinstance(path_or_module, nn.Module):
        chosen = _file_backend("module", backend, device, precision, cuda, Path("module"))
        return chosen.open(path_or_module, manifest=manifest, device=_eager_device(device, cuda), **kw)
    path = Path(os.fspath(path_or_module))
    if not path.exists():
        raise RunnerError(f"{path} does not exist", "a model file or an export directory", "check the path")
    notes: list[str] = []
    if path.is_dir():
        if not (path / names.MANIFEST).is_file():
            raise RunnerError(f"{path} has no {names.MANIFEST}", "a directory written by unet-export",
                              "pass the model file itself")
        manifest = Manifest.read(path)
        chosen, path, skipped = choose(manifest, path, backend, device, precision, cuda=cuda)
        notes += [f"skipped {s}" for s in skipped]
        notes.append(f"chose {path.name} ({chosen.name})")
        kind = chosen.kind
    else:
        kind = _KINDS.get(path.suffix.lower())
        if kind is None:
            raise RunnerError(f"unknown model file type {path.suffix!r}", f"one of {', '.join(_KINDS)} or a directory",
                              "rename the file or pass the export directory")
        if precision and kind != "module":
            raise RunnerError(f"precision={precision!r} given for {path.name}, whose precision is fixed",
                              "precision only for checkpoints and export directories",
                              "drop precision= or pass the export directory")
        chosen = _file_backend(kind, backend, device, precision, cuda, path)
    manifest, more = _matching_manifest(path, kind, verify, manifest)
    notes += more
    runner = chosen.open(path, manifest=manifest, device=_eager_device(device, cuda) if kind == "module" else None,
                         **kw)
    runner.notes[:0] = notes
    return runner


def _eager_device(device: str, cuda: bool) -> str:
    return ("cuda" if cuda else "cpu") if device == "auto" else device

