"""Trace a model with ``torch.export`` and find the input sizes it is exact for.

A UNet that decides in Python whether to pad (``if skip.shape != up.shape: ...``) is traced
for the sample size's branch only. ``torch.export`` turns such decisions into shape guards
and refuses dynamic dims that violate them ("Constraints violated", with suggested fixes
like ``H = 16*_H - 13`` or ``H = Dim('H', min=16)``). torch's own
``refine_dynamic_shapes_from_suggested_fixes`` applies them to our spec; the refined dims give
the alignment and the minimum size the model really needs, then trace again with
``H = align * _H`` so every guard holds for every admissible size.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import AlignmentError, ExportError
from ..models.geometry import round_up
from .failures import last_line
from .onnx_io import quiet_torch

MAX_SIZE = 16384
MAX_BATCH = 4096

_GUARD_RE = re.compile(r"^\s*- (.*)$")


def axis_names(spatial_dims: int = 2) -> tuple[str, ...]:
    """Names of the spatial axes: ``("H", "W")`` or ``("D", "H", "W")``."""
    return ("D", "H", "W")[3 - spatial_dims:]


@dataclass
class TraceResult:
    """An ExportedProgram plus what the exporter learned about admissible sizes."""

    program: "torch.export.ExportedProgram"
    alignment: int
    min_size: int
    sample_shape: tuple[int, ...]
    dynamic: bool
    notes: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)


@dataclass
class _Fixes:
    modulus: int = 1            # lcm of every affine ``k*_X + r`` fix on a spatial axis
    min_size: int = 0           # largest suggested minimum on a spatial axis
    static: dict[str, int] = field(default_factory=dict)
    guards: list[str] = field(default_factory=list)


class NotTraceableError(Exception):
    """torch.export could not trace the model at all (not a shape-constraint problem)."""


def _oblivious():
    """Avoid 0/1 specialisation of intermediate sizes (e.g. a 1×1 bottleneck) where supported."""
    try:
        import torch.fx.experimental._config as fx_config

        return fx_config.patch(backed_size_oblivious=True)
    except (ImportError, AttributeError):  # older torch: plain export
        return contextlib.nullcontext()


def _guards(message: str, spatial_dims: int) -> list[str]:
    """The "generated guard" lines of the message, with ``L['x'].size()[i]`` written as H/W/D."""
    names = axis_names(spatial_dims)
    out = []
    for line in message.split("Suggested fixes")[0].splitlines():
        m = _GUARD_RE.match(line)
        if not m:
            continue
        text = m.group(1)
        g = re.search(r"satisfy the generated guard (.*?)\.?$", text)
        guard = g.group(1) if g else text
        for i, name in enumerate(names):
            guard = re.sub(rf"L\['\w+'\]\.size\(\)\[{i + 2}\]", name, guard)
        out.append(guard)
    return out


def _axis_fix(dim) -> tuple[int | None, int, int]:
    """``(static size or None, modulus, minimum)`` of one refined dynamic-shapes entry."""
    import sympy
    from torch.export.dynamic_shapes import _DerivedDim

    if isinstance(dim, int):
        return dim, 1, dim
    if isinstance(dim, _DerivedDim):  # fn is affine in its root: k*root + r
        k = int(dim.fn(1) - dim.fn(0))
        root_min = dim.root.min if isinstance(dim.root.min, int) else 0
        return None, abs(k) or 1, max(0, int(dim.fn(root_min)))
    if isinstance(dim, sympy.Expr):  # a relation on a new root: k*__X (+ r)
        symbol = next(iter(dim.free_symbols))
        return None, abs(int(dim.coeff(symbol))) or 1, 0
    lo = getattr(dim, "min", None)
    return None, 1, int(lo) if isinstance(lo, int) else 0


def _fixes_block(message: str) -> str:
    """Only the "Suggested fixes:" lines (torch appends prose after them that its parser rejects)."""
    _, _, tail = message.partition("Suggested fixes:")
    lines = []
    for line in tail.strip("\n").splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    return "Suggested fixes:\n" + "\n".join(lines)


def parse_constraint_violation(message: str, align: int, min_size: int = 1, spatial_dims: int = 2) -> _Fixes:
    """Read torch.export's "Constraints violated" message into alignment/min-size fixes.

    The suggested fixes are applied to the dynamic-shapes spec the failed trace used with
    torch's own ``refine_dynamic_shapes_from_suggested_fixes``; the refined spec's spatial dims
    then give the modulus (``k`` of ``k*_H + r``), the minimum and any static size.

    Args:
        message: The exception text.
        align: The alignment the failed trace used.
        min_size: The minimum size the failed trace used.
        spatial_dims: 2 (H, W) or 3 (D, H, W).
    """
    from torch.export.dynamic_shapes import refine_dynamic_shapes_from_suggested_fixes

    fixes = _Fixes(guards=_guards(message, spatial_dims))
    spec = _dynamic_shapes(align, min_size, spatial_dims)
    try:
        refined = refine_dynamic_shapes_from_suggested_fixes(_fixes_block(message), spec)[0]
    except Exception:  # no or unsupported fixes (torch raises UserError / AssertionError): nothing derived
        return fixes
    names = ("N", *axis_names(spatial_dims))
    for axis, name in zip((0, *range(2, 2 + spatial_dims)), names):
        static, modulus, lo = _axis_fix(refined[axis])
        if static is not None:
            fixes.static[name] = static
        elif axis:
            fixes.modulus = math.lcm(fixes.modulus, modulus)
            fixes.min_size = max(fixes.min_size, lo)
    return fixes


def sample_shape(in_channels: int, align: int, min_size: int, spatial_dims: int = 2) -> tuple[int, ...]:
    """A tracing sample that avoids 0/1 specialisation: batch 2, distinct spatial sizes, none tiny.

    3-D samples are smaller (a volume costs the cube of its side).
    """
    if align == 1:
        base = max(min_size, 64 if spatial_dims == 2 else 32) + 3      # odd sizes
        steps = (0, 10) if spatial_dims == 2 else (0, 2, 6)
        return (2, in_channels, *(base + s for s in steps))
    floor = 64 if spatial_dims == 2 else 16
    h = round_up(max(min_size, floor, 2 * align), align)
    return (2, in_channels, *(h + j * align for j in range(spatial_dims)))


def _dynamic_shapes(align: int, min_size: int, spatial_dims: int = 2):
    from torch.export import Dim

    dims: dict[int, object] = {0: Dim("N", min=1, max=MAX_BATCH)}
    for axis, name in enumerate(axis_names(spatial_dims), start=2):
        if align == 1:
            dims[axis] = Dim(name, min=max(min_size, 2), max=MAX_SIZE)
        else:
            lo = max(1, round_up(min_size, align) // align)
            dims[axis] = align * Dim("_" + name, min=lo, max=MAX_SIZE // align)
    return (dims,)


def _export_once(model: nn.Module, in_channels: int, align: int, min_size: int, spatial_dims: int = 2):
    shape = sample_shape(in_channels, align, min_size, spatial_dims)
    x = torch.randn(shape)
    try:
        # torch dumps the failing graph to stderr before raising; the exception says it all
        with _oblivious(), torch.no_grad(), quiet_torch(), contextlib.redirect_stderr(io.StringIO()):
            ep = torch.export.export(model, (x,), dynamic_shapes=_dynamic_shapes(align, min_size, spatial_dims),
                                    strict=False)
    except Exception as exc:  # torch raises UserError / ConstraintViolationError / many others
        text = str(exc)
        if "Constraints violated" in text or "Suggested fixes" in text:
            return None, shape, text
        raise NotTraceableError(last_line(exc)) from exc
    return ep, shape, ""


def traced_ranges(program, spatial_dims: int = 2) -> list[tuple[int, int]]:
    """``(low, high)`` each spatial input axis admits in ``program`` (its range constraints).

    torch.export may narrow a declared range without a "Constraints violated" error (a model that
    specialises on sizes in Python, e.g. counting attention windows with ``math.ceil``); the
    ranges it kept are the sizes the graph is valid for.
    """
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name in _user_inputs(program))
    out = []
    for dim in node.meta["val"].shape[2:2 + spatial_dims]:
        if isinstance(dim, int):
            out.append((dim, dim))
            continue
        expr = dim.node.expr
        subs_lo, subs_hi = {}, {}
        for sym in expr.free_symbols:
            vr = program.range_constraints.get(sym)
            if vr is None:
                break
            subs_lo[sym], subs_hi[sym] = int(vr.lower), int(min(vr.upper, MAX_SIZE))
        else:
            out.append((int(expr.subs(subs_lo)), int(expr.subs(subs_hi))))
            continue
        out.append((0, MAX_SIZE))
    return out


def _user_inputs(program) -> set[str]:
    spec = program.graph_signature
    return set(spec.user_inputs)


def _check_ranges(program, align: int, min_size: int, spatial_dims: int) -> None:
    """Raise when torch.export narrowed the maximum size (sizes specialised).

    Raised lower bounds are not adopted: size-oblivious tracing reports roots >= 2 even where the
    graph is exact at 1 (the verification sweep checks the minimum).
    """
    ranges = traced_ranges(program, spatial_dims)
    top = MAX_SIZE // align * align
    narrowed = [(name, lo, hi) for name, (lo, hi) in zip(axis_names(spatial_dims), ranges) if hi < top]
    if narrowed:
        text = ", ".join(f"{n} to [{lo}, {hi}]" for n, lo, hi in narrowed)
        raise ExportError(f"torch.export narrowed {text}: the model specialises on input sizes in Python "
                          "(e.g. counting windows or patches with math on sizes), so no graph is exact at every size",
                          f"sizes free up to {top}",
                          "export one size with --static --shape, or compute those counts with tensor ops")


def trace(model: nn.Module, in_channels: int, *, align: int | None = None, spec_alignment: int = 1,
          spec_min_size: int = 1, max_rounds: int = 6, spatial_dims: int = 2) -> TraceResult:
    """Trace ``model`` with dynamic N, H, W, deriving the alignment and minimum size it needs.

    Args:
        model: The module (eval mode).
        in_channels: Input channels of the sample.
        align: ``None`` for automatic; an int forces that alignment (1 = every size).
        spec_alignment: The alignment the variant's spec requires (a floor for ``auto``).
        spec_min_size: The variant's stated minimum H/W.
        max_rounds: How many re-traces to allow while the alignment/min size is refined.
        spatial_dims: 2 (NCHW) or 3 (NCDHW: dynamic D, H, W).

    Raises:
        AlignmentError: the forced alignment cannot be exact at every admissible size.
        ExportError: the model cannot be traced with dynamic shapes at all.
    """
    forced = align is not None
    cur_align = align if forced else max(1, spec_alignment)
    min_size = max(1, spec_min_size)
    notes: list[str] = []
    all_guards: list[str] = []
    for _ in range(max_rounds):
        ep, shape, message = _export_once(model, in_channels, cur_align, min_size, spatial_dims)
        if ep is not None:
            # the dynamic dims were declared >= 2 (no 0/1 specialisation): sizes below were not traced
            min_size = round_up(min_size, cur_align) if cur_align > 1 else max(min_size, 2)
            _check_ranges(ep, cur_align, min_size, spatial_dims)
            return TraceResult(ep, cur_align, min_size, shape, True, notes, all_guards)
        fixes = parse_constraint_violation(message, cur_align, min_size, spatial_dims)
        all_guards.extend(g for g in fixes.guards if g not in all_guards)
        new_align = math.lcm(cur_align, fixes.modulus)
        new_min = max(min_size, fixes.min_size)
        if fixes.static:
            raise ExportError(
                f"the model only traces at a fixed size ({', '.join(f'{k}={v}' for k, v in fixes.static.items())})",
                "a model whose H/W/batch can vary",
                "export with --static, or remove the size-specific code from the model")
        if new_align != cur_align and forced:
            diag = "; ".join(all_guards[:4])
            raise AlignmentError(
                f"--align {cur_align} cannot be exact at every size: the model branches on input sizes "
                f"({diag})", f"an alignment that is a multiple of {new_align}",
                f"use --align {new_align} or --align auto")
        if new_align == cur_align and new_min == min_size:
            raise ExportError("torch.export reports shape constraints unetrt cannot derive a fix for: "
                              + "; ".join(fixes.guards[:4] or message.splitlines()[:2]),
                              "guards expressible as an alignment and a minimum size",
                              "export with --static, or make the model's forward size-agnostic")
        if new_align != cur_align:
            notes.append(f"model branches on input sizes: aligned to multiples of {new_align}")
        if new_min != min_size:
            notes.append(f"minimum input size {new_min} (from shape guards)")
        cur_align, min_size = new_align, new_min
    raise ExportError(f"no consistent alignment after {max_rounds} tracing rounds", None,
                      "export with --static")

