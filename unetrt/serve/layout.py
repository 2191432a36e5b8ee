"""A model repository while it is being staged: what it holds, and how one model's folder is written.

Shared by the writers of the repository's models (:mod:`.repository`) and of the image ensemble
(:mod:`.ensemble`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_bytes
from . import configs

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
