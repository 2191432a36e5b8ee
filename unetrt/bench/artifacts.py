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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import names
from ..artifacts.manifest import EngineEntry, Manifest
from ..artifacts.source import ModelSource
from ..errors import UnetrtError
from ..fileio import sha256_file
from .backends import artifact_file

__all__ = ["ModelSource", "Artifact", "ArtifactCache", "FILES", "EXPORT_SETS"]

_INT8 = {"int8": True, "int8_min_argmax": 0.0, "int8_min_dice": 0.0}
#: Export sets: the ``ExportConfig`` switches of each, and the artifact keys each provides.
EXPORT_SETS: dict[str, tuple[dict[str, Any], frozenset[str]]] = {
    "onnx": ({}, frozenset({"onnx"})),
    "onnx_fp16": ({"fp16": True}, frozenset({"onnx", "onnx_fp16"})),
    "engine": ({"engine": True}, frozenset({"onnx", "engine"})),
    "engine_fp16": ({"fp16": True, "engine": True}, frozenset({"onnx", "onnx_fp16", "engine_fp16"})),
    # INT8: calibrated on random inputs, bars off: the bench's parity rows are the accuracy measurement
    "onnx_int8": ({**_INT8, "int8_cpu": True}, frozenset({"onnx", "onnx_int8", "onnx_int8_cpu"})),
    "onnx_int8_cpu": ({**_INT8, "int8_cpu": True}, frozenset({"onnx", "onnx_int8", "onnx_int8_cpu"})),
    "engine_int8": ({**_INT8, "engine": True}, frozenset({"onnx", "onnx_int8", "engine_int8"})),
}
#: The file each artifact key is.
FILES = {key: artifact_file(key) for key in EXPORT_SETS}
_BUILD_ORDER = ("engine_fp16", "engine", "engine_int8", "onnx_int8", "onnx_int8_cpu", "onnx_fp16", "onnx")
RANDOM_INIT = "random_init.pth"


@dataclass(frozen=True)
class Artifact:
    """A ready file and the manifest of its export directory."""

    path: Path
    manifest: Manifest
    reused: bool


def _covers(entry: EngineEntry | None, shapes: Iterable[tuple[int, ...]]) -> bool:
    return entry is not None and all(entry.covers(shape) for shape in shapes)


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

    def _valid(self, directory: Path, kind: str) -> Manifest | None:
        """The manifest of ``directory`` when it holds a reusable ``kind`` file for this model."""
        if not (directory / names.MANIFEST).is_file():
            return None
        try:
            manifest = Manifest.read(directory)
        except UnetrtError:
            return None
        model = manifest.model
        recorded = model.checkpoint.sha256 if model.checkpoint else None
        if (model.arch, model.factory) != (self.source.arch, self.source.factory) or \
                (self.source.arch and any(model.kwargs.get(k) != v for k, v in self.source.kwargs.items())) or \
                recorded != self._ckpt:
            return None
        name = FILES[kind]
        path = directory / name
        if manifest.sha256_of(name) is None or not path.is_file() or manifest.sha256_of(name) != sha256_file(path):
            return None
        if kind.startswith("engine") and not _covers(manifest.engine(name), self.shapes):
            return None
        if kind.startswith("engine") and _engine_unusable(manifest.engine(name), directory):
            return None  # built for another GPU or TensorRT: rebuild here
        return manifest

    def _find(self, kind: str) -> Artifact | None:
        sets = [kind] + [s for s in _BUILD_ORDER if s != kind and kind in EXPORT_SETS[s][1]]
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
        from ..exporter import EngineOptions, ExportConfig, export

        switches = dict(EXPORT_SETS[kind][0])
        target = self.root / kind
        self.progress(f"exporting {self.source.label} ({kind}) into {target}")
        options = EngineOptions(profiles=[self._profile()]) if switches.get("engine") else EngineOptions()
        switches.setdefault("engine", False)
        # Parity is the benchmark's own measurement: the FP32 sweep is skipped here (the FP16 stage
        # still verifies, as it must to choose which nodes stay FP32).
        config = ExportConfig(arch=self.source.arch, factory=self.source.factory, model_kwargs=dict(self.source.kwargs),
                              checkpoint=self.weights, output_dir=str(target), force=True, verify=False,
                              engine_options=options, **switches)
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


def _engine_unusable(entry: EngineEntry | None, directory: Path) -> str | None:
    """Why a cached engine cannot run here (same rule as ``load()``), ``None`` when it can."""
    from dataclasses import asdict

    from ..runtime.engine_choice import engine_unusable_reason, installed_flavours, probe_gpu_cc

    if entry is None:
        return "not in the manifest"
    gpu = probe_gpu_cc()
    if gpu is None:
        return None  # no GPU to judge against (and none to run on): keep the cached build
    return engine_unusable_reason(asdict(entry), directory, gpu_cc=gpu, installed=installed_flavours())
