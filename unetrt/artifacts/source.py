"""``ModelSource``: which model an export (or a benchmark) is made from, and how to build it again.

A zoo variant (``arch``) or a user factory (``factory``, ``pkg.module:fn`` or ``path/file.py:fn``),
keyword arguments and an optional checkpoint. The manifest's ``model`` section records it, so the
runtime, the bench and the rebuild hints all rebuild the model the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError

__all__ = ["ModelSource"]


@dataclass(frozen=True)
class ModelSource:
    """Exactly one of ``arch`` and ``factory``, its kwargs and an optional checkpoint.

    Attributes:
        arch: Zoo variant name (see ``unetrt models``).
        factory: ``pkg.module:factory`` or ``path/to/file.py:factory`` (runs that code).
        kwargs: Keyword arguments for the variant or the factory.
        checkpoint: A ``.pth``/``.pt`` file loaded with ``weights_only=True``; ``None`` = random init.
    """

    arch: str | None = None
    factory: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        if bool(self.arch) == bool(self.factory):
            raise ModelLoadError("exactly one of --arch and --model must be given",
                                 "--arch NAME (a zoo variant) or --model pkg.module:factory", "run `unetrt models`")
        kwargs = {k: v for k, v in sorted(dict(self.kwargs or {}).items()) if v is not None}
        object.__setattr__(self, "kwargs", kwargs)

    @property
    def label(self) -> str:
        """A short label: the variant, or the factory's function name."""
        return self.arch or str(self.factory).rsplit(":", 1)[-1]

    def checkpoint_sha256(self) -> str | None:
        """sha256 of the checkpoint file (``None`` without one)."""
        from ..fileio import sha256_file

        return sha256_file(self.checkpoint) if self.checkpoint else None

    def build(self, *, load_weights: bool = True) -> tuple[Any, dict[str, Any]]:
        """Instantiate the model (eval mode) and load the checkpoint.

        Returns:
            ``(model, checkpoint metadata)``; the metadata holds e.g. milesial's ``mask_values``.

        Raises:
            UnknownModelError, ModelLoadError, CheckpointError: Bad name, factory or checkpoint.
        """
        from ..models import create_model, load_state_dict_into, load_user_model

        if self.factory:
            model = load_user_model(self.factory, dict(self.kwargs))
        else:
            model = create_model(self.arch, **dict(self.kwargs))
        meta: dict[str, Any] = {}
        if load_weights and self.checkpoint:
            meta = load_state_dict_into(model, self.checkpoint) or {}
        return model.eval(), meta

    def spec(self) -> Any:
        """The zoo ``ModelSpec`` of ``arch`` (``None`` for a factory)."""
        if not self.arch:
            return None
        from ..models import get_spec

        return get_spec(self.arch)

    def key(self, checkpoint_sha256: str | None = None) -> str:
        """sha256 of the identity: arch/factory, kwargs, checkpoint sha256 (computed unless given)."""
        ckpt = checkpoint_sha256 if checkpoint_sha256 is not None else self.checkpoint_sha256()
        ident = {"arch": self.arch, "factory": self.factory, "checkpoint": ckpt, "kwargs": dict(self.kwargs)}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()

    def cli_args(self) -> list[str]:
        """The ``unet-export`` arguments that name this model."""
        args = ["--arch", self.arch] if self.arch else ["--model", str(self.factory)]
        if self.kwargs:
            args += ["--model-kwargs", json.dumps(dict(self.kwargs), sort_keys=True)]
        if self.checkpoint:
            args += ["--checkpoint", str(Path(self.checkpoint))]
        return args
