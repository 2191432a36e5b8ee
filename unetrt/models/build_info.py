"""How a model was built (zoo name or factory spec, and the keyword arguments), kept beside the model.

A user's model is never written to: many third-party models own a ``config`` already (a read-only
property in segmentation_models_pytorch and diffusers, a plain attribute elsewhere), so the record
lives in a side table keyed weakly by the module. :func:`build_config` reads it back, falling back
to the model's own ``config`` when that is a mapping (zoo variants carry one; diffusers' models keep
their constructor arguments there).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from torch import nn

__all__ = ["build_config", "record_build"]

_RECORDS: "weakref.WeakKeyDictionary[nn.Module, dict[str, Any]]" = weakref.WeakKeyDictionary()


def record_build(model: nn.Module, info: Mapping[str, Any]) -> None:
    """Remember how ``model`` was built (e.g. ``{"factory": spec, **kwargs}``) without touching it."""
    _RECORDS[model] = dict(info)


def build_config(model: Any) -> dict[str, Any]:
    """A copy of the build record of ``model``.

    Args:
        model: Any module (or object).

    Returns:
        The recorded ``{"arch"|"factory": ..., **kwargs}``; without a record, the model's own
        ``config`` if it is a mapping; else ``{}``.
    """
    try:
        record = _RECORDS.get(model)
    except TypeError:  # not weakly referenceable / unhashable
        record = None
    if record is not None:
        return dict(record)
    try:
        own = getattr(model, "config", None)
    except Exception:  # a property that raises is no record
        own = None
    return dict(own) if isinstance(own, Mapping) else {}
