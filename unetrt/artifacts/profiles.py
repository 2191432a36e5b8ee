"""Optimisation profiles: the min / opt / max shape of one input, as the manifest and TensorRT take them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ProfileError

__all__ = ["ShapeProfile", "parse_dims"]


def parse_dims(text: str | Sequence[int], what: str) -> tuple[int, ...]:
    """Parse ``"1x3x256x256"`` (or a sequence of ints) into a tuple of positive ints."""
    if isinstance(text, str):
        parts = text.lower().replace(",", "x").split("x")
        if not all(re.fullmatch(r"\s*\d+\s*", p) for p in parts):
            raise ProfileError(f"bad {what} shape {text!r}", "positive integers joined by 'x', e.g. 1x3x256x256",
                               "fix the shape")
        text = [int(p) for p in parts]
    dims = tuple(int(d) for d in text)
    if not dims or any(d < 1 for d in dims):
        raise ProfileError(f"bad {what} shape {dims}", "a non-empty shape of positive sizes", "fix the shape")
    return dims


@dataclass(frozen=True)
class ShapeProfile:
    """Min / opt / max shape of one input tensor in one optimisation profile."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def __post_init__(self):
        shapes = {k: parse_dims(getattr(self, k), k) for k in ("min", "opt", "max")}
        for key, dims in shapes.items():
            object.__setattr__(self, key, dims)
        text = "/".join("x".join(map(str, d)) for d in shapes.values())
        if len({len(d) for d in shapes.values()}) != 1:
            raise ProfileError(f"profile {text} mixes ranks", "min, opt and max of the same rank",
                               "give all three shapes the same number of dimensions")
        if not all(a <= b <= c for a, b, c in zip(self.min, self.opt, self.max)):
            raise ProfileError(f"profile {text} is not ordered", "min <= opt <= max in every dimension",
                               "fix the shapes")

    @classmethod
    def parse(cls, min: str, opt: str, max: str) -> ShapeProfile:  # noqa: A002 - API names
        """Build a profile from ``"NxCxHxW"`` strings, e.g. ``parse("1x3x64x64", "1x3x256x256", ...)``."""
        return cls(parse_dims(min, "min"), parse_dims(opt, "opt"), parse_dims(max, "max"))

    def to_dict(self) -> dict:
        """Return ``{"min": [...], "opt": [...], "max": [...]}``."""
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}
