"""Build the model a source names: a zoo variant or a user factory, its kwargs, its checkpoint.

A source is anything with ``arch``, ``factory``, ``kwargs`` and ``checkpoint`` attributes (in practice
:class:`unetrt.artifacts.source.ModelSource`, which records the identity; building it lives here, with
the zoo, so the artifact contract does not import the zoo).
"""

from __future__ import annotations

from typing import Any

from .checkpoint import load_state_dict_into
from .registry import ModelSpec, create_model, get_spec
from .user_factory import load_user_model

__all__ = ["build_model", "zoo_spec"]


def build_model(source: Any, *, load_weights: bool = True) -> tuple[Any, dict[str, Any]]:
    """Instantiate the model of ``source`` (eval mode) and load its checkpoint.

    Returns:
        ``(model, checkpoint metadata)``; the metadata holds e.g. milesial's ``mask_values``.

    Raises:
        UnknownModelError, ModelLoadError, CheckpointError: Bad name, factory or checkpoint.
    """
    if source.factory:
        model = load_user_model(source.factory, dict(source.kwargs))
    else:
        model = create_model(source.arch, **dict(source.kwargs))
    meta: dict[str, Any] = {}
    if load_weights and source.checkpoint:
        meta = load_state_dict_into(model, source.checkpoint) or {}
    return model.eval(), meta


def zoo_spec(source: Any) -> ModelSpec | None:
    """The zoo ``ModelSpec`` of ``source.arch`` (``None`` for a factory)."""
    return get_spec(source.arch) if source.arch else None
