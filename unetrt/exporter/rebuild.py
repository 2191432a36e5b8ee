"""Rebuild the TensorRT engines an export lists, on the machine that will run them (``unetrt build``).

Each plan is rebuilt from the ONNX it was built from (checked against the recorded sha256), with the
profiles, precision and build options its manifest entry records: workspace, optimisation level, TF32,
profiling verbosity, version and hardware compatibility, weight stripping. Options the TensorRT here
cannot honour (compute-capability targets on standard TensorRT, hardware compatibility on TensorRT-RTX)
are dropped with a note. New plans are written beside the old ones and swapped in, with the manifest,
only when every build succeeded: a failed or interrupted rebuild leaves the export as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import names
from ..artifacts.manifest import EngineEntry, Manifest
from ..artifacts.profiles import ShapeProfile
from ..errors import EngineBuildError
from ..fileio import sha256_file

__all__ = ["RebuiltEngine", "rebuild_engines"]


@dataclass
class RebuiltEngine:
    """One rebuilt plan: its new manifest entry, the entry it replaced, and what changed."""

    entry: EngineEntry
    previous: EngineEntry
    notes: list[str] = field(default_factory=list)


def _profiles(entry: EngineEntry) -> list[dict[str, ShapeProfile]]:
    return [{name: ShapeProfile(tuple(p["min"]), tuple(p["opt"]), tuple(p["max"])) for name, p in prof.items()}
            for prof in entry.profiles]


def _source(directory: Path, entry: EngineEntry, manifest: Manifest, strongly_typed: bool) -> Path:
    """The ONNX to build from: the recorded one, except FP16 plans across typing modes (strongly typed
    TensorRT takes the FP16 ONNX, weakly typed the FP32 ONNX with ``BuilderFlag.FP16``)."""
    name = entry.onnx
    if entry.precision == "fp16":
        name = names.ONNX_FP16 if strongly_typed else names.ONNX
    path = directory / name
    if not path.is_file():
        raise EngineBuildError(f"{path} is missing: the engine {entry.path} is rebuilt from it",
                               "the ONNX files of the export beside manifest.json",
                               "copy the whole export folder, or export again")
    recorded = entry.onnx_sha256 if name == entry.onnx else manifest.sha256_of(name)
    if recorded and sha256_file(path) != recorded:
        raise EngineBuildError(f"{path.name} does not match the manifest (sha256 differs)",
                               "the ONNX the export wrote", "restore it or export again")
    return path


def _options(entry: EngineEntry, flavour: str, targets: Sequence[str] | None) -> tuple[dict[str, Any], list[str]]:
    """``build_engine`` keywords from the entry's recorded options, for ``flavour``; plus notes."""
    opts, notes = entry.options, []
    same = flavour == entry.flavour
    kw: dict[str, Any] = {
        "workspace_bytes": opts.get("workspace_bytes"), "optimization_level": opts.get("optimization_level"),
        "tf32": entry.tf32, "detailed_profiling": opts.get("profiling_verbosity") != "layer_names_only",
        "fp16_fallback": bool(opts.get("fp16_fallback")) and "FP16" in (opts.get("builder_flags") or []),
        "strip_weights": bool(opts.get("weight_stripped")),
        "refittable": bool(opts.get("refittable")) and not opts.get("weight_stripped"),
    }
    rtx = flavour == "tensorrt-rtx"
    recorded_targets = opts.get("compute_capabilities") if same and rtx else None
    kw["compute_capabilities"] = list(targets) if targets else recorded_targets
    if targets and not rtx:
        raise EngineBuildError(f"compute-capability targets {list(targets)} given for {flavour}",
                               "targets only with TensorRT-RTX", "drop --compute-capability")
    for key in ("version_compatible", "hardware_compatibility"):
        if opts.get(key) and rtx:
            notes.append(f"{key.replace('_', ' ')} dropped: TensorRT-RTX does not build such plans")
        elif opts.get(key):
            kw[key] = opts[key]
    if kw["fp16_fallback"] and not same:
        kw["fp16_fallback"] = False
        notes.append("FP16 fallback dropped: built on another flavour")
    return kw, notes


def _installed() -> set[str]:
    """The TensorRT flavours that import here."""
    from ..artifacts.trt import FLAVOURS, import_tensorrt
    from ..errors import UnetrtError

    out = set()
    for name in FLAVOURS:
        try:
            import_tensorrt(name)
        except UnetrtError:
            continue
        out.add(name)
    return out


def rebuild_engines(export_dir: str | os.PathLike, *, flavour: str = "auto", precisions: Sequence[str] | None = None,
                    compute_capabilities: Sequence[str] | None = None,
                    progress: Callable[[str, int, int], Any] | None = None) -> list[RebuiltEngine]:
    """Rebuild the engines listed in ``export_dir``'s manifest here and update the manifest.

    Args:
        export_dir: An export folder (``manifest.json`` + ONNX files).
        flavour: ``"auto"``: each plan's own flavour when it is installed, else the one that imports;
            or ``"tensorrt"`` / ``"tensorrt-rtx"``.
        precisions: Only the engines of these precisions (``None``: all).
        compute_capabilities: TensorRT-RTX targets instead of the recorded ones.
        progress: ``progress(phase, step, total)`` during each build.

    Returns:
        One :class:`RebuiltEngine` per rebuilt plan.

    Raises:
        EngineBuildError: No engine to rebuild, a missing or changed ONNX, or a build failure (the
            export is then left as it was).
    """
    from .steps import _jsonable
    from .trt_builder import build_engine, build_mode

    directory = Path(export_dir)
    manifest = Manifest.read(directory)
    wanted = [e for e in manifest.engines if precisions is None or e.precision in precisions]
    if not wanted:
        have = ", ".join(f"{e.path} ({e.precision})" for e in manifest.engines) or "none"
        raise EngineBuildError(f"no engine to rebuild in {directory} (engines listed: {have})",
                               "an export with TensorRT engines", "export with --engine, or fix --precision")
    installed = _installed()
    staged: list[tuple[Path, Path]] = []
    done: list[RebuiltEngine] = []
    try:
        for entry in wanted:
            choice = entry.flavour if flavour == "auto" and entry.flavour in installed else flavour
            name, version, strongly_typed = build_mode(choice)
            source = _source(directory, entry, manifest, strongly_typed)
            kw, notes = _options(entry, name, compute_capabilities)
            tmp = directory / f".{entry.path}.building"
            staged.append((tmp, directory / entry.path))
            info = build_engine(source, tmp, profiles=_profiles(entry), precision=entry.precision, flavour=name,
                                progress=progress, **kw).to_dict()
            fp16_mode = None
            if entry.precision == "fp16":
                fp16_mode = ("strongly typed, FP16 from the ONNX" if strongly_typed
                             else "BuilderFlag.FP16 on the FP32 ONNX")
            info.update(path=entry.path, onnx=source.name, options=_jsonable(info["options"]), fp16_mode=fp16_mode,
                        int8_mode=entry.int8_mode)
            if (entry.flavour, entry.version) != (name, version):
                notes.insert(0, f"was {entry.flavour} {entry.version or '?'}, now {name} {version}")
            done.append(RebuiltEngine(EngineEntry(**info), entry, notes))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in staged:
        os.replace(tmp, final)
    by_path = {r.entry.path: r.entry for r in done}
    manifest.engines = [by_path.get(e.path, e) for e in manifest.engines]
    manifest.write(directory)
    return done
