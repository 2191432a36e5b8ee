"""Shared click options and parameter types for the unetrt CLIs."""

from __future__ import annotations

import json

import click


class JsonKwargs(click.ParamType):
    """A JSON object, e.g. ``'{"width": 32, "bilinear": true}'``."""

    name = "JSON"

    def convert(self, value, param, ctx):
        if isinstance(value, dict):
            return value
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            self.fail(f"invalid JSON {value!r} ({exc.msg} at column {exc.colno}) | expected a JSON object such "
                      f"as '{{\"width\": 32}}' | quote it for your shell", param, ctx)
        if not isinstance(data, dict):
            self.fail(f"{value!r} is a JSON {type(data).__name__} | expected a JSON object such as "
                      f"'{{\"width\": 32}}'", param, ctx)
        return data


class Shape(click.ParamType):
    """``NxCxHxW`` / ``NxHxW`` / ``HxW`` sizes, e.g. ``1x3x256x256``."""

    name = "SHAPE"

    def __init__(self, ranks: tuple[int, ...] = (2, 3, 4)):
        self.ranks = ranks

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            dims = tuple(int(d) for d in str(value).lower().split("x"))
        except ValueError:
            dims = ()
        if len(dims) not in self.ranks or any(d < 1 for d in dims):
            forms = " or ".join({2: "HxW", 3: "NxHxW", 4: "NxCxHxW"}[r] for r in self.ranks)
            self.fail(f"invalid shape {value!r} | expected {forms} with positive integers, e.g. 1x3x256x256",
                      param, ctx)
        return dims


class Align(click.ParamType):
    """``auto`` or a positive integer."""

    name = "auto|N"

    def convert(self, value, param, ctx):
        if value is None or value == "auto":
            return None
        try:
            n = int(value)
        except (TypeError, ValueError):
            n = 0
        if n < 1:
            self.fail(f"invalid alignment {value!r} | expected 'auto' or a positive integer such as 16", param, ctx)
        return n


JSON_KWARGS = JsonKwargs()
ALIGN = Align()


def model_options(f):
    """--arch/--model/--model-kwargs/--checkpoint and the common model kwargs."""
    options = [
        click.option("--arch", "-a", default=None, help="Zoo variant (see `unetrt models`). Default: milesial."),
        click.option("--model", "factory", default=None, metavar="PKG.MODULE:FACTORY",
                     help="Any nn.Module factory instead of a zoo variant (also path/to/file.py:factory)."),
        click.option("--model-kwargs", type=JSON_KWARGS, default=None, help="Keyword arguments as a JSON object."),
        click.option("--checkpoint", "-c", type=click.Path(dir_okay=False), default=None,
                     help="State dict / milesial checkpoint (loaded with weights_only=True)."),
        click.option("--in-channels", type=click.IntRange(min=1), default=None, help="Input channels."),
        click.option("--classes", type=click.IntRange(min=1), default=None, help="Output classes."),
        click.option("--width", type=click.IntRange(min=1), default=None, help="Base channel width."),
        click.option("--bilinear/--no-bilinear", default=None, help="milesial: bilinear upsampling decoder."),
    ]
    for option in reversed(options):
        f = option(f)
    return f
