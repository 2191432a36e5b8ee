"""Exported artifacts (ONNX, FP16 ONNX, engines) built once per model and cached in a work directory.

Layout: ``<workdir>/<model label>-<key>/<set>/`` where ``key`` hashes the model's identity (arch or
factory, keyword arguments, checkpoint sha256) and ``set`` is one export of
:func:`unetrt.exporter.export`: ``onnx`` (FP32 ONNX), ``onnx_fp16`` (+ FP16 ONNX), ``engine`` (+ FP32
engine) or ``engine_fp16`` (+ FP16 ONNX and engine). A directory is reused when its manifest names
the same model and checkpoint sha256, lists the needed file with a matching sha256 and, for an
engine, has a profile covering every benchmarked shape; otherwise it is rebuilt (``force=True``).
A model without a checkpoint is pinned to weights saved once in the cache (``random_init.pth``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UnetrtError
from ..fileio import sha256_file

__all__ = ["ModelSource", "Artifact", "ArtifactCache", "FILES"]

#: The file each artifact kind is.
FILES = {"onnx": "model.onnx", "onnx_fp16": "model_fp16.onnx", "engine": "model.engine",
         "engine_fp16": "model_fp16.engine"}
#: Export sets: (fp16, engine) flags, and the kinds each provides.
_SETS = {"onnx": (False, False), "onnx_fp16": (True, False), "engine": (False, True), "engine_fp16": (True, True)}
_PROVIDES = {"onnx": {"onnx"}, "onnx_fp16": {"onnx", "onnx_fp16"}, "engine": {"onnx", "engine"},
             "engine_fp16": {"onnx", "onnx_fp16", "engine_fp16"}}
_BUILD_ORDER = ("engine_fp16", "engine", "onnx_fp16", "onnx")
RANDOM_INIT = "random_init.pth"




@dataclass(frozen=True)
class ModelSource:
    """The model under test: a zoo ``arch`` or a ``factory``, its kwargs and optional checkpoint."""

    arch: str | None = None
    factory: str | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None

    @property
    def label(self) -> str:
        return self.arch or (self.factory or "model").split(":")[-1]

    def checkpoint_sha256(self) -> str | None:
        return sha256_file(self.checkpoint) if self.checkpoint else None

    def key(self, checkpoint_sha256: str | None = None) -> str:
        """sha256 of the identity (arch/factory, non-None kwargs, checkpoint sha256, computed unless given)."""
        ckpt = checkpoint_sha256 if checkpoint_sha256 is not None else self.checkpoint_sha256()
        ident = {"arch": self.arch, "factory": self.factory, "checkpoint": ckpt,
                 "kwargs": {k: v for k, v in sorted(self.model_kwargs.items()) if v is not None}}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()

    def export_config(self, output_dir: Path, **kw: Any):
        """An :class:`unetrt.exporter.ExportConfig` for this model (``kw`` overrides, e.g. ``checkpoint``)."""
        from ..exporter import ExportConfig

        kwargs = {k: v for k, v in self.model_kwargs.items() if v is not None}
        kw.setdefault("checkpoint", self.checkpoint)
        return ExportConfig(arch=self.arch, factory=self.factory, model_kwargs=kwargs, output_dir=str(output_dir), **kw)


@dataclass(frozen=True)
class Artifact:
    """A ready file and the manifest of its export directory."""

    path: Path
    manifest: dict[str, Any]
    reused: bool


def _covers(entry: Mapping[str, Any], shapes: Iterable[tuple[int, ...]]) -> bool:
    for profile in entry.get("profiles") or []:
        p = profile.get("input") or next(iter(profile.values()), None)
        if p and all(all(lo <= d <= hi for lo, d, hi in zip(p["min"], s, p["max"])) for s in shapes):
            return True
    return False


class ArtifactCache:
    """Finds or builds the files the ONNX and TensorRT backends run.

    Args:
        workdir: Cache root.
        source: The model.
        shapes: Every benchmarked NCHW shape (engines are built with one profile covering them).
        progress: Called with a status line while exporting.
    """

    def __init__(self, workdir: str | Path, source: ModelSource, shapes: Iterable[tuple[int, ...]],
                 progress: Callable[[str], None] | None = None):
        self.source = source
        self.shapes = [tuple(s) for s in shapes]
        self.progress = progress or (lambda _msg: None)
        self._ckpt = source.checkpoint_sha256()
        self.root = Path(workdir).expanduser() / f"{source.label}-{source.key(self._ckpt)[:12]}"
        self.weights = source.checkpoint

    def use_weights_of(self, model) -> Path | None:
        """Pin a model built without a checkpoint to weights stored in the cache.

        Randomly initialised weights differ from build to build, so the first run saves the
        model's state dict to ``<root>/random_init.pth`` and exports from it; later runs load that
        file into ``model``, so eager, ONNX and engines always share one set of weights.
        Returns the file, or ``None`` when the source has a checkpoint.
        """
        if self.source.checkpoint:
            return None
        import torch

        from ..models import load_state_dict_into

        path = self.root / RANDOM_INIT
        if path.is_file():
            try:
                load_state_dict_into(model, path)
            except UnetrtError:
                path.unlink()
        if not path.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            torch.save(model.state_dict(), tmp)
            tmp.replace(path)
        self.weights, self._ckpt = str(path), sha256_file(path)
        return path

    def _valid(self, directory: Path, kind: str) -> dict[str, Any] | None:
        """The manifest of ``directory`` when it holds a reusable ``kind`` file for this model."""
        from ..exporter.manifest import read_manifest

        try:
            manifest = read_manifest(directory)
        except (OSError, ValueError):
            return None
        model = manifest.get("model") or {}
        kwargs = model.get("kwargs") or {}
        wanted = {k: v for k, v in self.source.model_kwargs.items() if v is not None}
        if (model.get("arch"), model.get("factory")) != (self.source.arch, self.source.factory) or \
                (self.source.arch and any(kwargs.get(k) != v for k, v in wanted.items())) or \
                ((model.get("checkpoint") or {}).get("sha256")) != self._ckpt:
            return None
        name = FILES[kind]
        entry = next((a for a in manifest.get("artifacts") or [] if a.get("path") == name), None)
        path = directory / name
        if entry is None or not path.is_file() or entry.get("sha256") != sha256_file(path):
            return None
        if kind.startswith("engine"):
            engine = next((e for e in manifest.get("engines") or [] if e.get("path") == name), {})
            if not _covers(engine, self.shapes):
                return None
        return manifest

    def _find(self, kind: str) -> Artifact | None:
        sets = [kind] + [s for s in _BUILD_ORDER if s != kind and kind in _PROVIDES[s]]
        for name in sets:
            manifest = self._valid(self.root / name, kind)
            if manifest is not None:
                return Artifact(self.root / name / FILES[kind], manifest, True)
        return None

    def _profile(self):
        from ..artifacts.profiles import ShapeProfile

        if not self.shapes:
            raise UnetrtError("no shapes to build an engine profile for", "at least one size and batch",
                              "give --sizes and --batch")
        rank = len(self.shapes[0])  # 4 (NCHW) or 5 (NCDHW)
        lo = tuple(min(s[i] for s in self.shapes) for i in range(rank))
        hi = tuple(max(s[i] for s in self.shapes) for i in range(rank))
        return {"input": ShapeProfile((1, *lo[1:]), (1, *self.shapes[0][1:]), hi)}

    def _build(self, kind: str) -> Artifact:
        from ..exporter import export
        from ..exporter.steps import EngineOptions

        fp16, engine = _SETS[kind]
        target = self.root / kind
        self.progress(f"exporting {self.source.label} ({kind}) into {target}")
        options = EngineOptions(profiles=[self._profile()]) if engine else EngineOptions()
        # Parity is the benchmark's own measurement: the FP32 sweep is skipped here (the FP16 stage
        # still verifies, as it must to choose which nodes stay FP32).
        config = self.source.export_config(target, checkpoint=self.weights, force=True, verify=False, fp16=fp16,
                                           engine=engine, engine_options=options)
        result = export(config, progress=lambda msg: self.progress(f"{kind}: {msg}"))
        return Artifact(target / FILES[kind], result.manifest, False)

    def prepare(self, kinds: Iterable[str]) -> dict[str, Artifact | UnetrtError]:
        """Every requested kind, found or built; a kind whose export failed maps to the error."""
        wanted = set(kinds)
        unknown = wanted - set(FILES)
        if unknown:
            raise UnetrtError(f"unknown artifact kind(s) {sorted(unknown)}", f"among {', '.join(FILES)}",
                              "fix the kinds")
        out: dict[str, Artifact | UnetrtError] = {}
        for kind in [k for k in _BUILD_ORDER if k in wanted]:
            found = self._find(kind)
            if found is None:
                try:
                    found = self._build(kind)
                except UnetrtError as exc:
                    out[kind] = exc
                    continue
            out[kind] = found
        return out
