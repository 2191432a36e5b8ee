"""``ModelSource``: which model an export (or a benchmark) is made from.

A zoo variant (``arch``) or a user factory (``factory``, ``pkg.module:fn`` or ``path/file.py:fn``),
keyword arguments and an optional checkpoint. The manifest's ``model`` section records it, so the
runtime, the bench and the rebuild hints all rebuild the model the same way
(:func:`unetrt.models.build_model` builds it; this module does not import the zoo).
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
