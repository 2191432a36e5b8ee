"""Triton repositories whose TensorRT plans are built where the server runs (``unetrt triton --build-on-start``).

A plan loads only on the TensorRT version (and GPU) that built it, so the repository ships what builds it
instead: ``<model>/export/`` holds ``manifest.json`` (with the engine entry: profiles, precision, options)
and the ONNX files. ``unetrt build REPO``, run in the serving image before the server starts (a Kubernetes
init container), rebuilds each listed engine there with :func:`unetrt.exporter.rebuild.rebuild_engines`
and installs it as ``<model>/1/model.plan``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..artifacts import names
from ..artifacts.manifest import EngineEntry
from ..artifacts.refs import ArtifactRef
from ..errors import ServeError
from ..fileio import atomic_path
from .layout import INDEX_NAME

__all__ = ["planned_engine", "stage_export", "build_repository_plans", "is_repository"]

BUILD_NOTE = ("{model}/1/model.plan is built on start: run `unetrt build REPO` in the serving image (its TensorRT) "
              "before the server starts, e.g. as a Kubernetes init container")


def planned_engine(contract: Any) -> EngineEntry:
    """The engine entry the plan is built from (FP16 preferred, then FP32, then INT8); its file need not exist."""
    for precision in ("fp16", "fp32", "int8"):
        for entry in contract.manifest.entries(ArtifactRef("engine", precision)):
            return entry
    raise ServeError(f"the export in {contract.directory} lists no TensorRT engine for --build-on-start",
                     "an engine entry in manifest.json (its profiles and precision say what to build)",
                     "export with --engine (TensorRT-RTX builds one without a GPU)")


def stage_export(contract: Any, engine: EngineEntry, folder: Path, plan: Any) -> None:
    """Copy what rebuilds ``engine`` (the manifest and the ONNX files) into ``folder/export`` and record it."""
    export = folder / "export"
    export.mkdir()
    wanted = {engine.onnx, names.ONNX, names.ONNX_FP16 if engine.precision == "fp16" else engine.onnx}
    for name in sorted(wanted):
        if not (contract.directory / name).is_file():
            raise ServeError(f"{name} is missing from {contract.directory}: --build-on-start ships it to build "
                             f"{engine.path}", "the export's ONNX files", "re-export into that directory")
        contract.copy(contract.directory / name, export / name)  # sha256 checked against the manifest
    contract.copy(contract.directory / names.MANIFEST, export / names.MANIFEST)
    model = folder.name
    plan.build_on_start.append({"model": model, "export": f"{model}/export", "engine": engine.path,
                                "precision": engine.precision, "plan": f"{model}/1/model.plan"})
    plan.notes.append(BUILD_NOTE.format(model=model))


def is_repository(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a repository written by ``unetrt triton`` (it holds its index)."""
    return (Path(path) / INDEX_NAME).is_file()


def build_repository_plans(repo: str | os.PathLike, *, flavour: str = "auto") -> list[dict[str, Any]]:
    """Build every plan ``repo``'s index lists for build on start and install it as the model's plan.

    Returns:
        One ``{"model", "plan", "flavour", "version", "seconds"}`` per plan.

    Raises:
        ServeError: The index lists nothing to build, or names a path outside the repository.
        EngineBuildError: A build failed (plans already installed stay; the failed one is not written).
    """
    from ..exporter.rebuild import rebuild_engines

    root = Path(repo).resolve()
    index = json.loads((root / INDEX_NAME).read_text())
    items = index.get("build_on_start") or []
    if not items:
        raise ServeError(f"{root} lists no plan to build on start", "a repository written with unetrt triton "
                         "--platform tensorrt --build-on-start", "pass an export directory, or rewrite the repository")
    done = []
    for item in items:
        export, plan = (root / item["export"]).resolve(), (root / item["plan"]).resolve()
        if root not in export.parents or root not in plan.parents:
            raise ServeError(f"{INDEX_NAME} names {item['export']!r} / {item['plan']!r}", "paths inside the repository",
                             "rewrite the repository with unetrt triton")
        rebuilt = next(r for r in rebuild_engines(export, flavour=flavour, precisions=[item["precision"]])
                       if r.entry.path == item["engine"])
        plan.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(plan) as tmp:
            shutil.copyfile(export / item["engine"], tmp)
        done.append({"model": item["model"], "plan": item["plan"], "flavour": rebuilt.entry.flavour,
                     "version": rebuilt.entry.version, "seconds": rebuilt.entry.build_seconds})
    return done
