"""``load()``: the right runner for a model file, an export directory or an ``nn.Module``.

Every choice goes through the backend registry (:mod:`unetrt.runtime.backends`): a directory is read
through its typed manifest, and :func:`unetrt.runtime.choice.choose` picks the first registered backend
that can run here, on the requested device and precision, and whose artifact the export has. What was
skipped and why is listed in ``runner.notes``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..artifacts import names
from ..artifacts.manifest import Manifest
from ..errors import RunnerError
from ..fileio import sha256_file
from . import backends as registry
from .base import Runner
from .choice import choose, file_backend

__all__ = ["load", "choose", "recorded_sha256"]

_KINDS = {".onnx": "onnx", ".engine": "engine", ".plan": "engine", ".pth": "module", ".pt": "module"}
_DEVICES = ("auto", "cpu", "cuda")


def _cuda() -> bool:
    from .cuda_probe import cuda_available

    return cuda_available()


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
    manifest = kw.pop("manifest", None)
    torch = sys.modules.get("torch")  # an nn.Module means torch is imported already: never import it here
    if torch is not None and isinstance(path_or_module, torch.nn.Module):
        chosen = file_backend("module", backend, device, precision, cuda, Path("module"))
        return chosen.open(path_or_module, manifest=manifest, device=chosen.device_for(device, cuda), **kw)
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
        chosen = file_backend(kind, backend, device, precision, cuda, path)
    manifest, more = _matching_manifest(path, kind, verify, manifest)
    notes += more
    runner = chosen.open(path, manifest=manifest, device=chosen.device_for(device, cuda) if kind == "module" else None,
                         **kw)
    runner.notes[:0] = notes
    return runner
