"""What serving needs from an export's manifest: tensor names, dtypes, sizes, artifacts.

One adapter over ``manifest.json`` so the repository writer, the python models and the client read
the deployment contract in one way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ServeError
from .configs import PARAM_INPUT, PARAM_MASK_VALUES, PARAM_OUTPUT

MANIFEST_NAME = "manifest.json"


@dataclass
class Contract:
    """The serving view of one export directory."""

    directory: Path
    manifest: dict[str, Any]

    # input -----------------------------------------------------------------------------------
    @property
    def input(self) -> dict[str, Any]:
        return dict(self.manifest.get("input") or {})

    @property
    def input_name(self) -> str:
        return self.input.get("name", "input")

    @property
    def input_dtype(self) -> str:
        return self.input.get("dtype", "float32")

    @property
    def channels(self) -> int:
        return int(self.input.get("channels") or (self.manifest.get("model") or {}).get("kwargs", {}).get(
            "in_channels", 3))

    @property
    def static_shape(self) -> list[int] | None:
        shape = self.input.get("static_shape")
        return list(shape) if shape and len(shape) == 4 else None

    @property
    def dynamic_batch(self) -> bool:
        return bool((self.input.get("dynamic") or {}).get("batch", self.static_shape is None))

    @property
    def static_n(self) -> int:
        return self.static_shape[0] if self.static_shape else 1

    def dims(self) -> list[int]:
        """``[C, H, W]`` with ``-1`` for dynamic H/W (the ONNX and python models)."""
        dyn = self.input.get("dynamic") or {}
        static = self.static_shape
        h = -1 if static is None or dyn.get("height") else static[2]
        w = -1 if static is None or dyn.get("width") else static[3]
        return [self.channels, h, w]

    # output ----------------------------------------------------------------------------------
    @property
    def output(self) -> dict[str, Any]:
        return {k: v for k, v in (self.manifest.get("output") or {}).items() if k != "examples"}

    @property
    def output_name(self) -> str:
        return self.output.get("name", "logits")

    @property
    def output_dtype(self) -> str:
        return self.output.get("dtype", "float32")

    @property
    def classes(self) -> int:
        return int(self.output.get("classes") or 1)

    @property
    def geometry(self) -> str:
        return self.output.get("geometry", "same")

    @property
    def mask_values(self) -> list | None:
        return self.manifest.get("mask_values")

    def parameters(self) -> dict[str, str]:
        """The contract as model-config parameters (read by the python models and the client)."""
        return {PARAM_INPUT: json.dumps(self.input, sort_keys=True),
                PARAM_OUTPUT: json.dumps(self.output, sort_keys=True),
                PARAM_MASK_VALUES: json.dumps(self.mask_values)}

    # artifacts -------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """``manifest.json`` and every artifact it lists that exists (what a python model copies)."""
        listed = [self.directory / Path(a["path"]).name for a in self.manifest.get("artifacts") or [] if a.get("path")]
        return [self.directory / MANIFEST_NAME] + [p for p in listed if p.is_file()]

    def require(self, section: str, platform: str) -> Path:
        """The file of a manifest section (``"onnx"``, ``"fp16"``), or a :class:`ServeError` naming the platform."""
        rel = (self.manifest.get(section) or {}).get("path")
        path = self.directory / rel if rel else None
        if path is None or not path.is_file():
            raise ServeError(f"the export in {self.directory} has no {section} artifact "
                             f"({rel or 'none listed'}) for --platform {platform}",
                             f"an export with {rel or 'model.onnx'}", "re-export into that directory (unet-export)")
        return path

    def engine(self) -> dict[str, Any]:
        """The engine entry for ``tensorrt_plan`` (FP16 preferred, then FP32)."""
        engines = sorted(self.manifest.get("engines") or [], key=lambda e: e.get("precision") != "fp16")
        for entry in engines:
            if entry.get("path") and (self.directory / entry["path"]).is_file():
                return entry
        raise ServeError(f"the export in {self.directory} has no TensorRT engine for --platform tensorrt",
                         "an export with an engine listed in manifest.json",
                         "re-export with --engine (needs tensorrt or tensorrt-rtx), or drop tensorrt from --platform")

    def plan_dims(self, engine: dict[str, Any]) -> tuple[list[int], int | None]:
        """``([C, H, W], max N)`` of an engine: a dimension is static only where every profile fixes it;
        max N is ``None`` when the engine's batch axis is static."""
        profiles = [p.get(self.input_name) or next(iter(p.values())) for p in engine.get("profiles") or []]
        io = next((t for t in engine.get("io") or [] if t.get("name") == self.input_name), None)
        shape = list(io["shape"]) if io else [-1] + self.dims()
        if not profiles:
            return [int(d) for d in shape[1:]], None if shape[0] != -1 else 1
        dims = []
        for axis in range(1, 4):
            lows = {p["min"][axis] for p in profiles}
            highs = {p["max"][axis] for p in profiles}
            dims.append(int(shape[axis]) if shape[axis] != -1 else
                        (lows.pop() if len(lows) == 1 and lows == highs else -1))
        max_n = max(p["max"][0] for p in profiles) if shape[0] == -1 else None
        return dims, max_n


def read_contract(export_dir: str | os.PathLike) -> Contract:
    """Read an export directory's manifest.

    Raises:
        ServeError: No directory or no readable unetrt manifest in it.
    """
    from ..exporter.manifest import read_manifest

    directory = Path(export_dir)
    if not (directory / MANIFEST_NAME).is_file():
        raise ServeError(f"{directory} has no {MANIFEST_NAME}", "an export directory written by unet-export",
                         "pass the directory unet-export -o wrote")
    try:
        manifest = read_manifest(directory)
    except (OSError, ValueError) as exc:
        raise ServeError(f"cannot read {directory / MANIFEST_NAME}: {exc}", "a unetrt manifest",
                         "re-export into that directory") from None
    return Contract(directory.resolve(), manifest)
