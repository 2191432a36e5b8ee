"""``load()``: the right runner for a model file, an export directory or an ``nn.Module``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import RunnerError
from ..fileio import sha256_file
from .base import Runner

__all__ = ["load", "BACKENDS"]

BACKENDS = ("torch", "ort", "trt")
_KINDS = {".onnx": "ort", ".engine": "trt", ".plan": "trt", ".pth": "torch", ".pt": "torch"}
MANIFEST_NAME = "manifest.json"




def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _read_manifest(path: Path) -> dict[str, Any]:
    from ..exporter.manifest import read_manifest

    try:
        return read_manifest(path)
    except (ValueError, OSError) as exc:
        raise RunnerError(f"cannot read {path}: {exc}", "a manifest.json written by unet-export",
                          "re-export, or delete the file to load the model without it") from None


def recorded_sha256(manifest: Mapping[str, Any], name: str, kind: str) -> str | None:
    """The sha256 the manifest records for the artifact file ``name`` (``None`` when not listed)."""
    entries = list(manifest.get("artifacts") or []) + list(manifest.get("engines") or [])
    entries += [manifest.get(key) or {} for key in ("onnx", "fp16")]
    for entry in entries:
        if entry.get("path") and Path(entry["path"]).name == name and entry.get("sha256"):
            return entry["sha256"]
    if kind == "torch":
        return ((manifest.get("model") or {}).get("checkpoint") or {}).get("sha256")
    return None


def _matching_manifest(path: Path, kind: str, verify: bool,
                       manifest: dict | None = None) -> tuple[dict | None, list[str]]:
    """The manifest describing ``path`` (beside it, or given) after the sha256 check, and notes."""
    if manifest is None:
        beside = path.parent / MANIFEST_NAME
        if not beside.is_file():
            return None, [f"no {MANIFEST_NAME} beside {path.name}: input sizes are checked against the model's own "
                          f"dims only"]
        manifest = _read_manifest(beside)
    recorded = recorded_sha256(manifest, path.name, kind)
    if recorded is None:
        if kind == "torch":
            return manifest, [f"{MANIFEST_NAME} records no checkpoint: {path.name} is loaded into its architecture "
                              f"without a sha256 check"]
        return None, [f"{MANIFEST_NAME} beside {path.name} does not list it: manifest ignored"]
    if verify:
        actual = sha256_file(path)
        if actual != recorded:
            raise RunnerError(f"manifest does not match the model file {path.name} (sha256 {actual[:12]}... != "
                              f"{recorded[:12]}... recorded)", "the file the manifest was written for",
                              "re-export (unet-export ... -o DIR --force) or remove the stale manifest.json")
    return manifest, []


def _ort_providers(device: str) -> str:
    if device != "auto":
        return device
    import onnxruntime

    return "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() and _cuda() else "cpu"


def _make(kind: str, path: Path, device: str, precision: str | None, manifest, kw: dict) -> Runner:
    if kind == "torch":
        from .pyt import TorchRunner

        dev = ("cuda" if _cuda() else "cpu") if device == "auto" else device
        return TorchRunner(path, device=dev, precision=precision or "fp32", manifest=manifest, **kw)
    if kind == "ort":
        from .ort import OrtRunner

        kw.setdefault("providers", _ort_providers(device))
        return OrtRunner(path, manifest=manifest, **kw)
    if device == "cpu":
        raise RunnerError(f"{path.name} is a TensorRT engine but device='cpu'", "device='auto' or 'cuda'",
                          "load the ONNX for CPU inference")
    from .trt import TrtRunner

    return TrtRunner(path, manifest=manifest, **kw)


def _usable_engine(entry: Mapping[str, Any], directory: Path, notes: list[str]) -> bool:
    from .engine_choice import engine_unusable_reason, installed_flavours, probe_gpu_cc

    why = engine_unusable_reason(entry, directory, gpu_cc=probe_gpu_cc(), installed=installed_flavours())
    if why:
        notes.append(why)
    return why is None


def _pick(manifest: dict, directory: Path, backend: str, gpu: bool, precision: str | None,
          notes: list[str]) -> tuple[str, Path]:
    """Choose ``(kind, file)`` in an export directory: an engine on a GPU, else the ONNX."""
    if backend == "torch":
        ckpt = ((manifest.get("model") or {}).get("checkpoint") or {}).get("path")
        if not ckpt or not Path(ckpt).is_file():
            raise RunnerError(f"the export in {directory} has no checkpoint file to run eagerly ({ckpt or 'none'})",
                              "manifest model.checkpoint.path pointing to an existing .pth",
                              "load the checkpoint itself: load('model.pth', arch=...)")
        return "torch", Path(ckpt)
    order = [precision] if precision else (["fp16", "fp32"] if gpu else ["fp32", "fp16"])
    if backend in ("auto", "trt") and gpu:
        engines = [e for p in order for e in manifest.get("engines") or [] if e.get("precision") == p]
        for entry in engines:
            if _usable_engine(entry, directory, notes):
                return "trt", directory / entry["path"]
    if backend == "trt":
        why = "no CUDA GPU" if not gpu else "; ".join(notes) or "no engine in the manifest"
        raise RunnerError(f"no TensorRT engine can run from {directory} ({why})",
                          f"a {'/'.join(order)} engine for an installed TensorRT on a CUDA GPU",
                          "re-export with --engine, or use backend='ort'")
    onnx_files = {"fp32": (manifest.get("onnx") or {}).get("path"), "fp16": (manifest.get("fp16") or {}).get("path")}
    for p in order:
        if onnx_files.get(p) and (directory / onnx_files[p]).is_file():
            return "ort", directory / onnx_files[p]
    raise RunnerError(f"no {'/'.join(order)} ONNX listed in {directory / MANIFEST_NAME} exists",
                      "the files unet-export wrote", "re-export into that directory")


def load(path_or_module: Any, backend: str = "auto", device: str = "auto", *, precision: str | None = None,
         verify: bool = True, **kw: Any) -> Runner:
    """Open a runner for a model (inactive; use ``with load(...) as runner:``).

    By file type: ``.pth``/``.pt`` -> :class:`TorchRunner` (architecture from a manifest beside it or
    ``arch=``), ``.onnx`` -> :class:`OrtRunner`, ``.engine``/``.plan`` -> :class:`TrtRunner`. A
    directory is read through its ``manifest.json``: a TensorRT engine when a CUDA GPU and its
    TensorRT flavour are present, else the ONNX on ONNX Runtime (FP16 artifacts preferred on a GPU,
    FP32 on CPU, unless ``precision`` says). A manifest beside the file is checked against the file's
    sha256 and exposed as ``runner.manifest``; what was chosen or missing is listed in ``runner.notes``.

    Args:
        path_or_module: File, export directory or ``nn.Module``.
        backend: ``"auto"``, ``"torch"``, ``"ort"`` or ``"trt"``.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        precision: ``"fp32"``/``"fp16"`` artifact (or TorchRunner precision); ``None`` picks.
        verify: Check the artifact's sha256 against the manifest.
        **kw: Passed to the runner (e.g. ``providers``, ``threads``, ``cuda_graph``, ``arch``).

    Raises:
        RunnerError: Missing file, unknown type, manifest/sha256 mismatch, nothing runnable.
    """
    if backend not in ("auto", *BACKENDS) or device not in ("auto", "cpu", "cuda"):
        raise RunnerError(f"backend={backend!r}, device={device!r}",
                          f"backend in auto/{'/'.join(BACKENDS)}, device in auto/cpu/cuda", "fix the arguments")
    if device == "cuda" and not _cuda():
        raise RunnerError("device='cuda' but no CUDA GPU is visible to PyTorch", "an NVIDIA GPU", "use device='cpu'")
    from torch import nn

    if isinstance(path_or_module, nn.Module):
        return _make("torch", path_or_module, device, precision, kw.pop("manifest", None), kw)  # type: ignore[arg-type]
    path = Path(os.fspath(path_or_module))
    if not path.exists():
        raise RunnerError(f"{path} does not exist", "a model file or an export directory", "check the path")
    notes: list[str] = []
    manifest = None
    if path.is_dir():
        if not (path / MANIFEST_NAME).is_file():
            raise RunnerError(f"{path} has no {MANIFEST_NAME}", "a directory written by unet-export",
                              "pass the model file itself")
        manifest = _read_manifest(path / MANIFEST_NAME)
        kind, path = _pick(manifest, path, backend, device != "cpu" and _cuda(), precision, notes)
        notes.append(f"chose {path.name} ({kind})")
    else:
        kind = _KINDS.get(path.suffix.lower())
        if kind is None:
            raise RunnerError(f"unknown model file type {path.suffix!r}", f"one of {', '.join(_KINDS)} or a directory",
                              "rename the file or pass the export directory")
        if backend not in ("auto", kind):
            raise RunnerError(f"backend {backend!r} cannot run a {path.suffix} file", f"backend 'auto' or '{kind}'",
                              "drop backend= or pass the matching file")
        if precision and kind != "torch":
            raise RunnerError(f"precision={precision!r} given for {path.name}, whose precision is fixed",
                              "precision only for checkpoints and export directories",
                              "drop precision= or pass the export directory")
    manifest, more = _matching_manifest(path, kind, verify, manifest)
    notes += more
    runner = _make(kind, path, device, precision if kind == "torch" else None, manifest, dict(kw))
    runner.notes[:0] = notes
    return runner
