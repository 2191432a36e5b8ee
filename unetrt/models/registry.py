"""Model registry: ``register_model``, ``create_model``, ``list_models``, ``get_spec``.

Each variant is a tiny registered function that receives the merged keyword arguments
(registered defaults overridden by the caller) and builds the module. A frozen
:class:`ModelSpec` carries the facts the exporter and runtime need.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..errors import UnknownModelError, format_message

_REGISTRY: dict[str, tuple["ModelSpec", Callable[..., nn.Module]]] = {}


@dataclass(frozen=True)
class ModelSpec:
    """Facts about a registered variant.

    Attributes:
        name: Registry name (public contract, e.g. ``"milesial"``).
        family: Module file / family the variant belongs to.
        description: One line for ``unetrt models``.
        defaults: Default keyword arguments (``in_channels``, ``num_classes``, ``width``, ...).
        alignment: H and W must be multiples of this (1 = any size).
        min_size: Smallest H and W the variant accepts.
        geometry: ``"same"`` (output H, W equal the input) or ``"valid"`` (unpadded convolutions
            shrink the output; see :func:`unetrt.models.output_hw`).
        notes: Free text on valid sizes and geometry, shown to users.
    """

    name: str
    family: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    alignment: int = 1
    min_size: int = 16
    geometry: str = "same"
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "defaults": dict(self.defaults),
            "alignment": self.alignment,
            "min_size": self.min_size,
            "geometry": self.geometry,
            "notes": self.notes,
        }


def register_model(name: str, *, family: str, description: str, defaults: dict[str, Any] | None = None,
                   alignment: int = 1, min_size: int = 16, geometry: str = "same", notes: str = ""):
    """Decorator registering ``fn(**kwargs) -> nn.Module`` under ``name``."""
    if geometry not in ("same", "valid"):
        raise ValueError(f"geometry must be 'same' or 'valid', got {geometry!r}")

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        spec = ModelSpec(name=name, family=family, description=description, defaults=dict(defaults or {}),
                         alignment=alignment, min_size=min_size, geometry=geometry, notes=notes)
        _REGISTRY[name] = (spec, fn)
        return fn

    return decorator


def _ensure_loaded() -> None:
    # Importing the package registers every family.
    from . import bn_unet, milesial, paper, prelu, resnet  # noqa: F401


def list_models() -> list[str]:
    """Names of every registered variant, in registration order."""
    _ensure_loaded()
    return list(_REGISTRY)


def _unknown(name: str) -> UnknownModelError:
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else "run `unetrt models` to list them"
    return UnknownModelError(f"unknown model {name!r}", f"one of {', '.join(_REGISTRY)}", hint)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered variant."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name][0]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered variant.

    ``None`` values are dropped so a CLI can pass unset options straight through; the
    remaining kwargs override the variant's defaults. The built module gets a ``config``
    attribute (``{"arch": name, **merged_kwargs}``) and is returned in eval mode.

    Raises:
        UnknownModelError: ``name`` is not registered (close names are suggested).
        TypeError: a keyword the variant does not take.
    """
    _ensure_loaded()
    if name not in _REGISTRY:
        raise _unknown(name)
    spec, fn = _REGISTRY[name]
    merged = dict(spec.defaults)
    merged.update({k: v for k, v in kwargs.items() if v is not None})
    unknown = sorted(set(merged) - set(spec.defaults))
    if unknown:
        raise TypeError(format_message(f"model {name!r} got unexpected keyword(s) {', '.join(unknown)}",
                                       f"any of {', '.join(sorted(spec.defaults))}"))
    model = fn(**merged)
    model.config = {"arch": name, **merged}
    return model.eval()
