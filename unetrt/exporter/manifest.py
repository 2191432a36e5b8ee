"""``manifest.json``: what was exported, how, from what, and how well it matches eager."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from importlib import metadata as _md
from pathlib import Path
from typing import Any

from ..fileio import atomic_path

MANIFEST_NAME = "manifest.json"
FORMAT = "unetrt-manifest"
VERSION = 1
_TOOLS = ("unetrt", "torch", "onnx", "onnxruntime", "onnxscript", "onnxsim", "onnxconverter-common",
          "numpy", "tensorrt", "tensorrt-rtx")


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shaped the artifacts (installed ones only)."""
    versions = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            versions[name] = _md.version(name)
        except _md.PackageNotFoundError:
            continue
    return versions


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def new_manifest() -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "created": now_iso(), "tools": tool_versions()}


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON to ``path`` through a temp file in the same directory and ``os.replace``."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=_jsonable)
        f.write("\n")
    return path


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_manifest(directory_or_file: str | os.PathLike) -> dict[str, Any]:
    """Read ``manifest.json`` from a directory, or the one beside an artifact file."""
    p = Path(directory_or_file)
    path = p / MANIFEST_NAME if p.is_dir() else (p if p.name == MANIFEST_NAME else p.parent / MANIFEST_NAME)
    with open(path) as f:
        data = json.load(f)
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a unetrt manifest")
    return data


def onnx_metadata(manifest: dict[str, Any]) -> dict[str, str]:
    """The manifest sections stored in the ONNX file's ``metadata_props`` (as JSON strings)."""
    props = {"unetrt.format_version": str(VERSION)}
    for key in ("model", "input", "output", "mask_values"):
        if key in manifest:
            props[f"unetrt.{key}"] = json.dumps(manifest[key], default=_jsonable, sort_keys=True)
    return props
