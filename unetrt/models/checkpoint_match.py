"""Which zoo variant does a state dict belong to? Used to explain checkpoint mismatches.

Every registered variant (and, for boolean options such as milesial's ``bilinear``, its
toggled form) is built once on the ``meta`` device, which allocates no memory, and its
key names are compared with the checkpoint's. For the best match the arguments that
reproduce the checkpoint's shapes (``in_channels``, ``num_classes``, ``width``) are inferred
from the first and last convolution weights and verified by building that model too.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch

from .registry import create_model, get_spec, list_models

Shapes = dict[str, tuple[int, ...]]


@functools.lru_cache(maxsize=None)
def _reference(name: str, options: tuple[tuple[str, Any], ...] = ()) -> Shapes:
    with torch.device("meta"):
        model = create_model(name, **dict(options))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _candidates() -> list[tuple[str, tuple[tuple[str, Any], ...]]]:
    found = []
    for name in list_models():
        found.append((name, ()))
        for key, value in get_spec(name).defaults.items():
            if isinstance(value, bool):
                found.append((name, ((key, not value),)))
    return found


def _keys(shapes: Mapping[str, Any]) -> set[str]:
    return {k for k in shapes if not k.endswith("num_batches_tracked")}


def key_overlap(reference: Mapping[str, Any], given: Mapping[str, Any]) -> float:
    """Jaccard overlap of two key sets (BatchNorm counters ignored), in [0, 1]."""
    a, b = _keys(reference), _keys(given)
    return len(a & b) / max(len(a | b), 1)


def _same_shapes(reference: Shapes, given: Shapes) -> bool:
    return all(k in given and given[k] == shape for k, shape in reference.items()
               if not k.endswith("num_batches_tracked")) and _keys(reference) == _keys(given)


def _conv_weights(reference: Shapes) -> list[str]:
    return [k for k, shape in reference.items() if k.endswith("weight") and len(shape) == 4]


def infer_arguments(name: str, options: dict[str, Any], given: Shapes) -> dict[str, Any] | None:
    """Arguments of variant ``name`` that reproduce the shapes in ``given``, or ``None``."""
    reference = _reference(name, tuple(sorted(options.items())))
    convs = [k for k in _conv_weights(reference) if k in given and len(given[k]) == 4]
    if not convs:
        return None
    first, last = convs[0], convs[-1]
    defaults = get_spec(name).defaults
    guess = dict(options)
    guess["in_channels"] = given[first][1]
    guess["num_classes"] = given[last][0]
    ratio, rest = divmod(given[first][0] * defaults.get("width", 1), reference[first][0])
    if "width" in defaults and not rest and ratio > 0:
        guess["width"] = ratio
    try:
        candidate = _reference(name, tuple(sorted(guess.items())))
    except Exception:  # the guess may be an invalid configuration: no suggestion then
        return None
    return guess if _same_shapes(candidate, given) else None


def _call(name: str, args: Mapping[str, Any]) -> str:
    defaults = get_spec(name).defaults
    shown = [f"{k}={v!r}" for k, v in args.items() if defaults.get(k) != v]
    return f"create_model({', '.join([repr(name)] + shown)})"


def describe_best_match(state_dict: Mapping[str, Any]) -> str:
    """One sentence naming the zoo variant whose state dict matches ``state_dict`` best.

    Args:
        state_dict: Checkpoint weights (only key names and shapes are used).

    Returns:
        A fix suggestion such as ``"the checkpoint's keys match zoo variant 'prelu' (100% of
        keys); build it with create_model('prelu', width=8)"``.
    """
    given = {k: tuple(v.shape) for k, v in state_dict.items() if hasattr(v, "shape")}
    scored = [(key_overlap(_reference(n, o), given), n, o) for n, o in _candidates()]
    score, name, options = max(scored, key=lambda item: item[0])
    if score < 0.5:
        return (f"no zoo variant matches its keys (closest: {name!r} with {score:.0%} shared keys); "
                "for your own architecture load a user model (pkg.module:factory) instead")
    head = f"the checkpoint's keys match zoo variant {name!r} best ({score:.0%} of keys)"
    reference = _reference(name, options)
    opts = dict(options)
    if _same_shapes(reference, given):
        return f"{head}; build it with {_call(name, opts)}"
    args = infer_arguments(name, opts, given)
    if args is not None:
        return f"{head}, shapes match with {_call(name, args)}; build the model that way"
    first = next(iter(_conv_weights(reference)), None)
    hint = ""
    if first in given and len(given[first]) == 4:
        hint = (f"; its first conv {first} has {given[first][0]} output channels "
                f"(width {get_spec(name).defaults.get('width')} gives {reference[first][0]})")
    return f"{head} but shapes differ{hint}; rebuild with matching in_channels / num_classes / width"
