"""A model repository while it is being staged: what it holds, how one model's folder is written, and how
the whole repository appears at its place at once.

Shared by the writers of the export's models (:mod:`.repository`), the image ensemble (:mod:`.ensemble`)
and the nnU-Net pipeline model (:mod:`.nnunet_model`): each checks its target with :func:`check_target`,
writes into :func:`staged_repository` and gets a repository that is either whole or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import OutputError, ServeError
from ..fileio import atomic_write_bytes, check_output_dir
from . import configs

#: What ``unetrt triton`` wrote, at the repository's top (models by role, notes, plans built on start).
INDEX_NAME = "unetrt_repository.json"

#: ``1/model.py`` of a python-backend model: the class lives in :mod:`unetrt.serve.triton_models`.
PYTHON_SHIM = '''"""Triton python-backend model written by `unetrt triton`: {doc}"""

from unetrt.serve.triton_models import {cls} as TritonPythonModel  # noqa: F401
'''


@dataclass
class RepositoryPlan:
    """What a repository holds: model names by role, configs (``ModelConfig``) and notes."""

    root: Path
    models: dict[str, str] = field(default_factory=dict)   # role -> model name
    configs: dict[str, Any] = field(default_factory=dict)  # model name -> ModelConfig
    notes: list[str] = field(default_factory=list)
    #: Plans ``unetrt build REPO`` writes before the server starts: ``{"model", "export", "engine", "plan"}``.
    build_on_start: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "unetrt-triton-repository", "version": 1, "models": self.models,
                "notes": self.notes, "build_on_start": self.build_on_start}


def write_config(stage: Path, config, plan: RepositoryPlan) -> Path:
    """Write ``stage/<name>/config.pbtxt`` (and the version folder ``1/``), record it in ``plan``."""
    folder = stage / config.name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "config.pbtxt", configs.to_text(config).encode())
    plan.configs[config.name] = config
    return folder


def check_target(repo: str | os.PathLike, force: bool) -> Path:
    """Refuse a path the file system rejects, a file, an unwritable place, or a non-empty directory without
    ``force``, before any work is done; the absolute target."""
    return check_output_dir(repo, force, what="repository directory", flag="-o")


@contextmanager
def staged_repository(plan: RepositoryPlan) -> Iterator[Path]:
    """A staging directory beside ``plan.root`` to write the models into. When the block ends without an
    error, every config is parsed back and validated against the whole repository, the index is written
    and the staged directory replaces ``plan.root`` (an old one is removed afterwards); on any error (or
    a signal) only the staging directory goes."""
    target = plan.root
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    except OSError as exc:
        raise OutputError(f"cannot write the repository {target}: {exc.strerror or exc}", "a writable directory",
                          "choose another -o, or make its parent writable") from None
    try:
        yield stage
        _check_all(stage, plan)
        atomic_write_bytes(stage / INDEX_NAME, (json.dumps(plan.to_dict(), indent=2) + "\n").encode())
        _swap_in(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap_in(stage: Path, target: Path) -> None:
    """Move the staged repository into place (the old one, if any, is removed afterwards)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "repo")
    os.replace(stage, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_all(stage: Path, plan: RepositoryPlan) -> None:
    """Parse every written config back and validate it against the whole repository."""
    parsed = {n: configs.read_config(stage / n) for n in plan.configs}
    for model_name, config in parsed.items():
        if config != plan.configs[model_name]:
            raise ServeError(f"config of {model_name!r} does not survive a text round trip", "identical messages",
                             "this is a unetrt bug: please report it")
        configs.validate(config, model_name, parsed)
