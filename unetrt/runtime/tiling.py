"""Tiled inference over any runner: overlap-tile for valid convolutions, sliding window for the rest.

* :func:`overlap_tile` (Ronneberger et al. 2015) is for models whose output is smaller than their
  input (``paper``, ``crop``, ``pad``): the image is mirror-padded so the outputs of a grid of tiles
  cover it exactly. Tiles start at multiples of ``period`` (the pooling factor, 16 for four 2x2
  poolings), so each tile sees the pooling grid a single pass over the padded image would see and
  the stitched result equals that single pass (up to float summation order).
* :func:`sliding_window` is for same-size models and images (or ``NxCxDxHxW`` volumes) larger than
  what one run may take (an engine profile's max): overlapping tiles are blended with weights that
  vanish towards a tile's inner edges, where padding replaces real context.

Both take ``NxCxHxW`` arrays (sliding windows volumes too), call ``progress(done, total)`` after each batch of tiles (the CLI
drives a rich progress bar with it) and activate an inactive runner for the duration of the call.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from .base import Runner, to_numpy

__all__ = ["TilePlan", "plan_overlap_tile", "overlap_tile", "sliding_window", "blend_weights"]

Progress = Callable[[int, int], None]


class TilePlan(NamedTuple):
    """Overlap-tile layout: mirror padding ``(top, bottom, left, right)`` and tile origins (canvas coords)."""

    pad: tuple[int, int, int, int]
    starts_y: list[int]
    starts_x: list[int]
    tile: tuple[int, int]
    out_tile: tuple[int, int]


def _pair(value, what: str, minimum: int = 1) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(int(v) < minimum for v in pair):
        kind = "positive" if minimum else "non-negative"
        raise InputError(f"{what}={value!r}", f"a {kind} int or (height, width)", f"fix {what}")
    return int(pair[0]), int(pair[1])


def _plan_axis(size: int, tile: int, out: int, period: int) -> tuple[int, int, list[int]]:
    margin = tile - out
    if margin <= 0:
        raise InputError(f"a {tile}-pixel tile gives a {out}-pixel output: the model does not shrink its input",
                         "a valid-convolution model (output smaller than input)", "use sliding_window instead")
    step = out // period * period
    if step < 1:
        raise InputError(f"a {tile}-pixel tile gives only {out} output pixels, fewer than the period {period}",
                         f"an output tile of at least {period} pixels", "use a larger tile")
    count = 1 + max(0, math.ceil((size - out) / step))
    before = margin // 2
    after = (count - 1) * step + tile - size - before
    return before, after, [i * step for i in range(count)]


def plan_overlap_tile(image_hw: tuple[int, int], tile, out_tile, period: int = 16) -> TilePlan:
    """Lay out overlap-tile inference for an ``HxW`` image.

    Args:
        image_hw: Image (H, W).
        tile: Input tile (H, W) or one int.
        out_tile: The model's output size for that tile.
        period: Tile origins are multiples of this (pooling factor of the model: 2**levels).

    Returns:
        A :class:`TilePlan`; the canvas is the image mirror-padded by ``pad``.
    """
    (th, tw), (oh, ow) = _pair(tile, "tile"), _pair(out_tile, "out_tile")
    top, bottom, ys = _plan_axis(int(image_hw[0]), th, oh, period)
    left, right, xs = _plan_axis(int(image_hw[1]), tw, ow, period)
    return TilePlan((top, bottom, left, right), ys, xs, (th, tw), (oh, ow))


@contextlib.contextmanager
def _active(runner: Runner) -> Iterator[Runner]:
    if runner.is_active:
        yield runner
        return
    with runner:
        yield runner


def _names(runner: Runner, input_name: str | None, output_name: str | None) -> tuple[str, str, str]:
    inputs = runner.input_metadata
    name = input_name or next(iter(inputs))
    out = output_name or next(iter(runner.output_metadata))
    return name, out, inputs[name].dtype


def _check_image(x) -> np.ndarray:
    x = to_numpy(x)
    if x.ndim != 4:
        raise InputError(f"array of shape {x.shape}", "NxCxHxW", "add the batch axis: x[None]")
    return x


def _run_batches(runner, name, out_name, tiles, batch_size, progress) -> Iterator[tuple[tuple, np.ndarray]]:
    """Yield ``(key, output tile)`` for ``tiles = [(key, input tile CxHxW)]``, ``batch_size`` at a time."""
    if batch_size < 1:
        raise InputError(f"batch_size={batch_size}", "a positive integer", "fix batch_size")
    for first in range(0, len(tiles), batch_size):
        chunk = tiles[first:first + batch_size]
        batch = np.ascontiguousarray(np.stack([t for _, t in chunk]))
        out = to_numpy(runner.infer({name: batch})[out_name])
        yield from ((key, out[i]) for i, (key, _) in enumerate(chunk))
        if progress is not None:
            progress(min(first + batch_size, len(tiles)), len(tiles))


def overlap_tile(runner: Runner, x, tile, *, period: int = 16, pad_mode: str = "reflect", batch_size: int = 1,
                 progress: Progress | None = None, input_name: str | None = None,
                 output_name: str | None = None) -> np.ndarray:
    """Seamless tiled inference for a valid-convolution model; returns ``NxKxHxW`` for an ``NxCxHxW`` input.

    The output size of one tile is probed on the runner once (a zero tile). Each tile contributes
    its whole output; overlapping outputs are identical, so the result does not depend on the
    tiling. For exact agreement with a single pass the tile must be one the model pools without
    flooring (``paper``/``crop``: H, W = 12 mod 16).

    Args:
        runner: Any runner of a model with a shrinking output.
        x: ``NxCxHxW`` input, already pre-processed.
        tile: Input tile size (H, W) or one int; must be admissible for the runner.
        period: Tile origins are multiples of this (16 for four 2x2 poolings; 1 without pooling).
        pad_mode: ``np.pad`` mode of the border extension (``"reflect"`` mirrors, as in the paper).
        batch_size: Tiles per ``infer`` call.
        progress: ``progress(done, total)`` after each batch.
        input_name / output_name: Which input/output (default: the first).
    """
    x = _check_image(x)
    n, c, h, w = x.shape
    with _active(runner):
        name, out_name, dtype = _names(runner, input_name, output_name)
        th, tw = _pair(tile, "tile")
        probe = to_numpy(runner.infer({name: np.zeros((1, c, th, tw), dtype=dtype)})[out_name])
        plan = plan_overlap_tile((h, w), (th, tw), probe.shape[2:], period)
        top, bottom, left, right = plan.pad
        canvas = np.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right)], mode=pad_mode)
        oh, ow = plan.out_tile
        result = np.zeros((n, probe.shape[1], plan.starts_y[-1] + oh, plan.starts_x[-1] + ow), dtype=probe.dtype)
        tiles = [((k, y, z), canvas[k, :, y:y + th, z:z + tw]) for k in range(n) for y in plan.starts_y
                 for z in plan.starts_x]
        for (k, y, z), out in _run_batches(runner, name, out_name, tiles, batch_size, progress):
            if out.shape[1:] != (oh, ow):
                raise InputError(f"tile output {out.shape[1:]} differs from the probed {(oh, ow)}",
                                 "the same output size for every tile", "report this model")
            result[k, :, y:y + oh, z:z + ow] = out
    return result[:, :, :h, :w]


def blend_weights(length: int, overlap: int, *, blend: str = "linear", trim: int = 0, start_edge: bool = False,
                  end_edge: bool = False) -> np.ndarray:
    """1-D tile weights along one axis.

    ``"linear"``: 0 for the ``trim`` pixels next to an inner tile edge, then a ramp to 1 over the rest
    of the overlap (two neighbours' ramps sum to 1); ends lying on the image border keep weight 1.
    ``"gaussian"``: a Gaussian centred on the tile (sigma = length / 8, floored at 1e-3).
    ``"mean"``: all ones (plain averaging).
    """
    if blend == "mean":
        return np.ones(length)
    if blend == "gaussian":
        d = np.arange(length) - (length - 1) / 2
        return np.maximum(np.exp(-0.5 * (d / (length / 8)) ** 2), 1e-3)
    if blend != "linear":
        raise InputError(f"unknown blend {blend!r}", "'linear', 'gaussian' or 'mean'", "fix blend")
    if not 0 <= 2 * trim < max(overlap, 1):
        raise InputError(f"trim={trim} with overlap={overlap}", "0 <= 2*trim < overlap", "lower trim")
    ramp_len = overlap - 2 * trim
    dist = np.arange(length, dtype=np.float64)
    up = np.ones(length) if start_edge or overlap == 0 else np.clip((dist - trim + 0.5) / ramp_len, 0, 1)
    down = np.ones(length) if end_edge or overlap == 0 else np.clip((dist[::-1] - trim + 0.5) / ramp_len, 0, 1)
    return np.minimum(up, down)


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    step = tile - overlap
    return sorted(set(list(range(0, size - tile, step)) + [size - tile]))


def _tuple(value, what: str, n: int, minimum: int = 1) -> tuple[int, ...]:
    """One int or ``n`` ints (one per spatial axis), each ``>= minimum``."""
    if n == 2:
        return _pair(value, what, minimum)
    items = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(items) != n or any(int(v) < minimum for v in items):
        kind = "positive" if minimum else "non-negative"
        raise InputError(f"{what}={value!r}", f"a {kind} int or (depth, height, width)", f"fix {what}")
    return tuple(int(v) for v in items)


def _check_volume(x) -> np.ndarray:
    x = to_numpy(x)
    if x.ndim not in (4, 5):
        raise InputError(f"array of shape {x.shape}", "NxCxHxW (image) or NxCxDxHxW (volume)",
                         "add the batch axis: x[None]")
    return x


def sliding_window(runner: Runner, x, tile=None, *, overlap=None, blend: str = "linear", trim=None,
                   batch_size: int = 1, progress: Progress | None = None, input_name: str | None = None,
                   output_name: str | None = None) -> np.ndarray:
    """Blend overlapping tiles of a same-size model; ``NxKxHxW`` for ``NxCxHxW``, ``NxKxDxHxW`` for a volume.

    Args:
        runner: Runner of a model whose output has its input's spatial size.
        x: ``NxCxHxW`` or ``NxCxDxHxW`` input, already pre-processed (and aligned if the model needs it).
        tile: Tile size per spatial axis, or one int; default: the runner's max sizes (engine
            profile), else the input's. A tile larger than the input is cut to the input's.
        overlap: Overlap between neighbouring tiles, int or per axis; default a quarter of the tile.
        blend: ``"linear"`` (default), ``"gaussian"`` or ``"mean"`` (see :func:`blend_weights`).
        trim: Pixels next to an inner tile edge given weight 0 (linear); default overlap // 4.
        batch_size: Tiles per ``infer`` call.
        progress: ``progress(done, total)`` after each batch.
        input_name / output_name: Which input/output (default: the first).
    """
    x = _check_volume(x)
    n, sizes = x.shape[0], x.shape[2:]
    k = len(sizes)
    axes = tuple(range(2, 2 + k))
    with _active(runner):
        name, out_name, _ = _names(runner, input_name, output_name)
        if tile is None:  # the largest admissible tile: a static shape, a profile's max, else the input
            spec = runner.input_constraints[name]
            if len(spec.shape) != x.ndim:
                raise InputError(f"a {x.ndim}-D input for a runner of {len(spec.shape)}-D inputs",
                                 f"{len(spec.shape)}-D arrays", "pass images to a 2-D model, volumes to a 3-D one")
            limits = [spec.shape[a] or (spec.max_shape[a] if spec.max_shape else None) for a in axes]
            tile = tuple(lim or s for lim, s in zip(limits, sizes))
        tiles_hw = tuple(min(t, s) for t, s in zip(_tuple(tile, "tile", k), sizes))
        over = tuple(t // 4 for t in tiles_hw) if overlap is None else _tuple(overlap, "overlap", k, 0)
        if any(o >= t for o, t in zip(over, tiles_hw)):
            raise InputError(f"overlap {over} with tile {tiles_hw}", "overlap smaller than the tile", "lower overlap")
        trims = tuple(o // 4 for o in over) if trim is None else _tuple(trim, "trim", k, 0)
        starts = [_starts(s, t, o) for s, t, o in zip(sizes, tiles_hw, over)]
        weights = [{p: blend_weights(t, o, blend=blend, trim=r, start_edge=p == 0, end_edge=p + t >= s)
                    for p in ps} for ps, s, t, o, r in zip(starts, sizes, tiles_hw, over, trims)]
        acc = norm = out = None
        origins = list(itertools.product(*starts))
        tiles = [((b, o), x[(b, slice(None), *(slice(p, p + t) for p, t in zip(o, tiles_hw)))])
                 for b in range(n) for o in origins]
        for (b, origin), out in _run_batches(runner, name, out_name, tiles, batch_size, progress):
            if tuple(out.shape[1:]) != tiles_hw:
                raise InputError(f"a {'x'.join(map(str, tiles_hw))} tile gave a "
                                 f"{'x'.join(map(str, out.shape[1:]))} output", "a same-size model",
                                 "use overlap_tile for valid-convolution models")
            if acc is None:
                acc = np.zeros((n, out.shape[0], *sizes))
                norm = np.zeros((n, 1, *sizes))
            weight = functools.reduce(np.multiply.outer, [w[p] for w, p in zip(weights, origin)])
            region = (b, slice(None), *(slice(p, p + t) for p, t in zip(origin, tiles_hw)))
            acc[region] += weight * out
            norm[region] += weight
    if not np.all(norm > 0):
        raise InputError("some pixels got no tile weight", "trim small enough for the overlap", "lower trim")
    return (acc / norm).astype(out.dtype)
