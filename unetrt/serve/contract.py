"""What serving needs from an export's manifest: tensor names, dtypes, sizes, artifacts.

One adapter over ``manifest.json`` so the repository writer, the python models and the client read
the deployment contract in one way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import names
from ..artifacts.manifest import EngineEntry, Manifest
from ..artifacts.refs import ArtifactRef
from ..errors import ServeError
from ..runtime.choice import locate
from .configs import DEFAULT_MAX_PIXELS, PARAM_MANIFEST, PARAM_MAX_PIXELS

MANIFEST_NAME = names.MANIFEST


@dataclass
class Contract:
    """The serving view of one export directory (its typed :class:`Manifest`)."""

    directory: Path
    manifest: Manifest
    max_pixels: int = DEFAULT_MAX_PIXELS  # per request, written into every model's parameters

    # input -----------------------------------------------------------------------------------
    @property
    def input_name(self) -> str:
        return self.manifest.input.name

    @property
    def input_dtype(self) -> str:
        return self.manifest.input.dtype

    @property
    def channels(self) -> int:
        return int(self.manifest.input.channels)

    @property
    def static_shape(self) -> list[int] | None:
        shape = self.manifest.input.static_shape
        return list(shape) if shape and len(shape) == 4 else None

    @property
    def dynamic_batch(self) -> bool:
        return bool(self.manifest.input.dynamic.batch)

    @property
    def static_n(self) -> int:
        return self.static_shape[0] if self.static_shape else 1

    def dims(self) -> list[int]:
        """``[C, H, W]`` with ``-1`` for dynamic H/W (the ONNX and python models)."""
        dyn, static = self.manifest.input.dynamic, self.static_shape
        h = -1 if static is None or dyn.height else static[2]
        w = -1 if static is None or dyn.width else static[3]
        return [self.channels, h, w]

    # output ----------------------------------------------------------------------------------
    @property
    def output_name(self) -> str:
        return self.manifest.output.name

    @property
    def output_dtype(self) -> str:
        return self.manifest.output.dtype

    @property
    def classes(self) -> int:
        return int(self.manifest.output.classes or 1)

    @property
    def geometry(self) -> str:
        return self.manifest.output.geometry

    def parameters(self) -> dict[str, str]:
        """The manifest as a model-config parameter (per-size verification rows left out), read by the
        python models and by :class:`~unetrt.serve.client.TritonRunner`."""
        data = self.manifest.to_dict()
        data["verification"]["sizes"] = []
        if data.get("fp16"):
            data["fp16"]["parity"] = []
            if data["fp16"].get("verification"):
                data["fp16"]["verification"]["sizes"] = []
        return {PARAM_MANIFEST: json.dumps(data, sort_keys=True), PARAM_MAX_PIXELS: str(int(self.max_pixels))}

    # artifacts -------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """``manifest.json`` and every artifact it lists that exists (what a python model copies)."""
        listed = [self.directory / Path(a.path).name for a in self.manifest.artifacts]
        return [self.directory / MANIFEST_NAME] + [p for p in listed if p.is_file()]

    def copy(self, source: Path, target: Path) -> Path:
        """Copy an artifact of this export to ``target``, checking the copy's sha256 against the manifest
        (``manifest.json`` itself has none); a mismatch removes the copy.

        Raises:
            ServeError: The file is not listed, or its bytes differ from what the export recorded.
        """
        source = Path(source)
        expected = None if source.name == MANIFEST_NAME else self.manifest.sha256_of(source.name)
        if source.name != MANIFEST_NAME and not expected:
            raise ServeError(f"{source.name} has no sha256 in {self.directory / MANIFEST_NAME}",
                             "every served artifact listed with its sha256", "re-export (unet-export)")
        digest = hashlib.sha256()
        with open(source, "rb") as src, open(target, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                dst.write(chunk)
        shutil.copystat(source, target)
        if expected and digest.hexdigest() != expected:
            Path(target).unlink()
            raise ServeError(f"{source} does not match its sha256 in the manifest (the file changed since export)",
                             f"sha256 {expected[:16]}…", "re-export into that directory (unet-export)")
        return Path(target)

    def require(self, precision: str, platform: str) -> Path:
        """The ONNX file of a precision, or a :class:`ServeError` naming the platform."""
        ref = ArtifactRef("onnx", precision)
        entry = self.manifest.entry(ref)
        rel = entry.path if entry is not None else None
        path, _why = locate(self.manifest, self.directory, ref, here=False)
        if path is None:
            raise ServeError(f"the export in {self.directory} has no {precision} ONNX ({rel or 'none listed'}) "
                             f"for --platform {platform}", f"an export with {rel or names.ONNX}",
                             "re-export into that directory (unet-export)")
        return path

    def engine(self) -> EngineEntry:
        """The engine entry for ``tensorrt_plan`` (FP16 preferred, then FP32, then INT8)."""
        for precision in ("fp16", "fp32", "int8"):  # Triton deserialises the plan: only its file must be here
            for entry in self.manifest.entries(ArtifactRef("engine", precision)):
                if (self.directory / entry.path).is_file():
                    return entry
        raise ServeError(f"the export in {self.directory} has no TensorRT engine for --platform tensorrt",
                         "an export with an engine listed in manifest.json",
                         "re-export with --engine (needs tensorrt or tensorrt-rtx), or drop tensorrt from --platform")

    def plan_dims(self, engine: EngineEntry) -> tuple[list[int], int | None]:
        """``([C, H, W], max N)`` of an engine: a dimension is static only where every profile fixes it;
        max N is ``None`` when the engine's batch axis is static."""
        profiles = [p.get(self.input_name) or next(iter(p.values())) for p in engine.profiles]
        io = next((t for t in engine.io if t.get("name") == self.input_name), None)
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
        ServeError: No directory or no manifest in it.
        ManifestError: An invalid manifest (the message names the field).
    """
    directory = Path(export_dir)
    if not (directory / MANIFEST_NAME).is_file():
        raise ServeError(f"{directory} has no {MANIFEST_NAME}", "an export directory written by unet-export",
                         "pass the directory unet-export -o wrote")
    return Contract(directory.resolve(), Manifest.read(directory))
