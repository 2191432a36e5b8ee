"""Exported artifacts (ONNX, FP16 ONNX, engines) built once per model and cached in a work directory.

Layout: ``<workdir>/<model label>-<key>/<set>/`` where ``key`` hashes the model's identity (arch or
factory, keyword arguments, checkpoint sha256) and ``set`` is one export of
:func:`unetrt.exporter.export`, named by the :attr:`~unetrt.artifacts.refs.ArtifactRef.key` of the
artifact it was made for: ``onnx`` (FP32 ONNX), ``onnx_fp16`` (+ FP16 ONNX), ``engine`` (+ FP32
engine), ``engine_fp16`` (+ FP16 ONNX and engine), ``onnx_int8`` ... A directory is reused when its
manifest names the same model and checkpoint sha256, lists the needed file with a matching sha256
(found by :func:`unetrt.runtime.choice.locate`, as ``load()`` finds it) and, for an engine, has a
profile covering every benchmarked shape; otherwise it is rebuilt (``force=True``).
A model without a checkpoint is pinned to weights saved once in the cache (``random_init.pth``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import names
from ..artifacts.manifest import EngineEntry, Manifest
from ..artifacts.refs import ArtifactRef
from ..artifacts.source import ModelSource
from ..errors import UnetrtError
from ..fileio import sha256_file
from ..runtime import engine_choice
from ..runtime.choice import locate

__all__ = ["ModelSource", "Artifact", "ArtifactCache", "EXPORTS"]

#: Per precision, ``ExportConfig`` settings beyond its switch: INT8 is calibrated on random inputs with the
#: accuracy bars off (the bench's parity rows are the accuracy measurement).
_PRECISION_SETTINGS: dict[str, dict[str, Any]] = {"int8": {"int8_min_argmax": 0.0, "int8_min_dice": 0.0}}


@dataclass(frozen=True)
class ExportSet:
    """How the bench exports an artifact: the ``ExportConfig`` switches, and every artifact that export holds."""

    switches: Mapping[str, Any]
    provides: frozenset[ArtifactRef]


def export_set(ref: ArtifactRef) -> ExportSet:
    """The export that makes ``ref``: the FP32 ONNX always; a precision's switch (``fp16``, ``int8``) and
    every ONNX form of it (``int8_cpu``; of FP32 only the one asked for: ``fp32_labels``); ``engine`` for an engine (built from its precision's ONNX)."""
    fp32 = ArtifactRef("onnx")
    switches: dict[str, Any] = {}
    provides = {fp32, ref}
    if ref.precision != "fp32":
        switches.update({ref.precision: True, **_PRECISION_SETTINGS.get(ref.precision, {})})
        provides.add(ArtifactRef("onnx", ref.precision))
    if ref.kind == "engine":
        switches["engine"] = True
    else:
        for kind, precision, form in names.FILES:
            # every form of FP16/INT8 comes with its precision; an FP32 form (labels) only when asked for
            if (kind, precision) == ("onnx", ref.precision) and form and (precision != "fp32" or form == ref.form):
                switches[f"{precision}_{form}"] = True
                provides.add(ArtifactRef(kind, precision, form))
    return ExportSet(switches, frozenset(provides))


def _build_order() -> dict[ArtifactRef, ExportSet]:
    """Every file artifact's export, engines first and larger exports first (a smaller artifact is then
    found in a larger export instead of being exported again)."""
    refs = [ArtifactRef(*key) for key in names.FILES]
    sets = {ref: export_set(ref) for ref in refs}
    return dict(sorted(sets.items(), key=lambda item: (item[0].kind != "engine", -len(item[1].provides),
                                                       refs.index(item[0]))))


#: The export that makes each artifact, in build order (an export that provides several is reused for each).
EXPORTS: dict[ArtifactRef, ExportSet] = _build_order()
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

    def _valid(self, directory: Path, ref: ArtifactRef) -> Manifest | None:
        """The manifest of ``directory`` when it holds a reusable ``ref`` file for this model."""
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
        # an engine built for another GPU or TensorRT is rebuilt here; without a GPU there is nothing to judge
        # against (and nothing to run on), so the cached build is kept
        path, _reason = locate(manifest, directory, ref, here=ref.kind == "engine" and engine_choice.probe_gpu_cc() is not None)
        if path is None or path.name != ref.file_name or manifest.sha256_of(path.name) != sha256_file(path):
            return None
        if ref.kind == "engine" and not _covers(manifest.engine(path.name), self.shapes):
            return None
        return manifest

    def _find(self, ref: ArtifactRef) -> Artifact | None:
        sets = [ref] + [s for s in EXPORTS if s != ref and ref in EXPORTS[s].provides]
        for made_for in sets:
            manifest = self._valid(self.root / made_for.key, ref)
            if manifest is not None:
                return Artifact(self.root / made_for.key / str(ref.file_name), manifest, True)
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

    def _build(self, ref: ArtifactRef) -> Artifact:
        from ..exporter import EngineOptions, ExportConfig, export

        kind = ref.key
        switches = dict(EXPORTS[ref].switches)
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
        return Artifact(target / str(ref.file_name), result.manifest, False)

    def prepare(self, refs: Iterable[ArtifactRef]) -> dict[ArtifactRef, Artifact | UnetrtError]:
        """Every requested artifact, found or built; one whose export failed maps to the error."""
        wanted = set(refs)
        unknown = wanted - set(EXPORTS)
        if unknown:
            raise UnetrtError(f"unknown artifact kind(s) {sorted(r.key for r in unknown)}",
                              f"among {', '.join(r.key for r in EXPORTS)}", "fix the kinds")
        out: dict[ArtifactRef, Artifact | UnetrtError] = {}
        for ref in [r for r in EXPORTS if r in wanted]:
            found = self._find(ref)
            if found is None:
                try:
                    found = self._build(ref)
                except UnetrtError as exc:
                    out[ref] = exc
                    continue
            out[ref] = found
        return out
