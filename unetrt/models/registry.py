"""Model registry: ``register_model``, ``create_model``, ``list_models``, ``get_spec``.

Each variant is a tiny registered function that receives the merged keyword arguments
(registered defaults overridden by the caller) and builds the module. A frozen
:class:`ModelSpec` carries the facts the exporter and runtime need.

This module knows no variant: the family modules import it and register themselves, and
``unetrt.models`` (the package) imports the families, so importing the package is what fills
the registry. A third-party family registers the same way, by being imported.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from torch import nn

from ..errors import ModelConfigError, RegistrationError, UnknownModelError
from .build_info import record_build

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
        """The spec as a JSON-able dict (``defaults`` copied)."""
        return asdict(self)


def register_model(name: str, *, family: str, description: str, defaults: dict[str, Any] | None = None,
                   alignment: int = 1, min_size: int = 16, geometry: str = "same", notes: str = ""):
    """Decorator registering ``fn(**kwargs) -> nn.Module`` under ``name``."""
    if geometry not in ("same", "valid"):
        raise RegistrationError(f"model {name!r} registered with geometry={geometry!r}", "'same' or 'valid'",
                                "pass geometry='same' (output size = input size) or 'valid'")

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise RegistrationError(f"model {name!r} is already registered (family {_REGISTRY[name][0].family!r})",
                                    "a new, unique name", "register the variant under another name")
        spec = ModelSpec(name=name, family=family, description=description, defaults=dict(defaults or {}),
                         alignment=alignment, min_size=min_size, geometry=geometry, notes=notes)
        _REGISTRY[name] = (spec, fn)
        return fn

    return decorator


def list_models() -> list[str]:
    """Names of every registered variant, in registration order."""
    return list(_REGISTRY)


def _unknown(name: str) -> UnknownModelError:
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else "run `unetrt models` to list them"
    return UnknownModelError(f"unknown model {name!r}", f"one of {', '.join(_REGISTRY)}", hint)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered variant."""
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name][0]


def _unexpected(spec: ModelSpec, unknown: list[str]) -> ModelConfigError:
    accepted = sorted(spec.defaults)
    close = {k: difflib.get_close_matches(k, accepted, n=1, cutoff=0.6) for k in unknown}
    hints = [f"{k!r} -> {c[0]!r}" for k, c in close.items() if c]
    fix = (f"did you mean {', '.join(hints)}?" if hints
           else f"drop {', '.join(map(repr, unknown))}; `unetrt models` lists each variant's arguments")
    return ModelConfigError(f"model {spec.name!r} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}",
                            f"one of {', '.join(accepted)}", fix)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered variant.

    ``None`` values are dropped so a CLI can pass unset options straight through; the
    remaining kwargs override the variant's defaults. The built module gets a ``config``
    attribute (``{"arch": name, **merged_kwargs}``) and is returned in eval mode.

    Raises:
        UnknownModelError: ``name`` is not registered (close names are suggested).
        ModelConfigError: a keyword the variant does not take (the accepted ones are listed,
            with the closest name when one is near).
    """
    if name not in _REGISTRY:
        raise _unknown(name)
    spec, fn = _REGISTRY[name]
    merged = dict(spec.defaults)
    merged.update({k: v for k, v in kwargs.items() if v is not None})
    unknown = sorted(set(merged) - set(spec.defaults))
    if unknown:
        raise _unexpected(spec, unknown)
    model = fn(**merged)
    model.config = {"arch": name, **merged}  # a zoo class: the attribute is ours to set
    record_build(model, model.config)
    return model.eval()
