"""Trace a model with ``torch.export`` and find the input sizes it is exact for.

A UNet that decides in Python whether to pad (``if skip.shape != up.shape: ...``) is traced
for the sample size's branch only. ``torch.export`` turns such decisions into shape guards
and refuses dynamic dims that violate them ("Constraints violated", with suggested fixes
like ``H = 16*_H - 13`` or ``H = Dim('H', min=16)``). We read those suggestions to derive
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
from .onnx_io import quiet_torch

MAX_SIZE = 16384
MAX_BATCH = 4096

_DIM_RE = re.compile(r"^\s*(\w+) = Dim\('\w+'(?:, min=(\d+))?(?:, max=(\d+))?\)\s*$")
_AFFINE_RE = re.compile(r"^\s*(\w+) = (\d+)\*(\w+)(?: ([+-]) (\d+))?\s*$")
_STATIC_RE = re.compile(r"^\s*(\w+) = (\d+)\s*$")
_GUARD_RE = re.compile(r"^\s*- (.*)$")


@dataclass
class TraceResult:
    """An ExportedProgram plus what the exporter learned about admissible sizes."""

    program: "torch.export.ExportedProgram"
    alignment: int
    min_size: int
    sample_shape: tuple[int, int, int, int]
    dynamic: bool
    notes: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)


@dataclass
class _Fixes:
    modulus: int = 1            # lcm of every ``k*_X`` suggestion on H/W
    min_size: int = 0           # largest suggested minimum on H/W
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


def parse_constraint_violation(message: str, align: int) -> _Fixes:
    """Read torch.export's "Constraints violated" message into alignment/min-size fixes.

    Args:
        message: The exception text.
        align: The alignment the failed trace used (roots ``_H``/``_W`` are in its units).
    """
    fixes = _Fixes()
    in_fixes = False
    for line in message.splitlines():
        if line.strip().startswith("Suggested fixes"):
            in_fixes = True
            continue
        if not in_fixes:
            m = _GUARD_RE.match(line)
            if m:
                text = m.group(1)
                g = re.search(r"satisfy the generated guard (.*?)\.?$", text)
                guard = g.group(1) if g else text
                guard = re.sub(r"L\['\w+'\]\.size\(\)\[2\]", "H", guard)
                fixes.guards.append(re.sub(r"L\['\w+'\]\.size\(\)\[3\]", "W", guard))
            continue
        if m := _AFFINE_RE.match(line):
            name, k = m.group(1), int(m.group(2))
            if name.lstrip("_") in ("H", "W") or name.startswith("_"):
                unit = align if name.startswith("_") else 1
                fixes.modulus = math.lcm(fixes.modulus, k * unit)
        elif m := _DIM_RE.match(line):
            name, lo = m.group(1), m.group(2)
            if lo is not None and name.lstrip("_") in ("H", "W"):
                unit = align if name.startswith("_") else 1
                fixes.min_size = max(fixes.min_size, int(lo) * unit)
        elif m := _STATIC_RE.match(line):
            fixes.static[m.group(1)] = int(m.group(2))
    return fixes



def sample_shape(in_channels: int, align: int, min_size: int) -> tuple[int, int, int, int]:
    """A tracing sample that avoids 0/1 specialisation: batch 2, H != W, neither tiny."""
    if align == 1:
        h = max(min_size, 64) + 3          # odd H
        return 2, in_channels, h, h + 10   # W odd too, different
    h = round_up(max(min_size, 64, 2 * align), align)
    return 2, in_channels, h, h + align


def _dynamic_shapes(model: nn.Module, align: int, min_size: int):
    from torch.export import Dim

    batch = Dim("N", min=1, max=MAX_BATCH)
    if align == 1:
        hdim = Dim("H", min=max(min_size, 2), max=MAX_SIZE)
        wdim = Dim("W", min=max(min_size, 2), max=MAX_SIZE)
    else:
        lo = max(1, round_up(min_size, align) // align)
        hdim = align * Dim("_H", min=lo, max=MAX_SIZE // align)
        wdim = align * Dim("_W", min=lo, max=MAX_SIZE // align)
    return ({0: batch, 2: hdim, 3: wdim},)


def _export_once(model: nn.Module, in_channels: int, align: int, min_size: int):
    shape = sample_shape(in_channels, align, min_size)
    x = torch.randn(shape)
    try:
        # torch dumps the failing graph to stderr before raising; the exception says it all
        with _oblivious(), torch.no_grad(), quiet_torch(), contextlib.redirect_stderr(io.StringIO()):
            ep = torch.export.export(model, (x,), dynamic_shapes=_dynamic_shapes(model, align, min_size), strict=False)
    except Exception as exc:  # torch raises UserError / ConstraintViolationError / many others
        text = str(exc)
        if "Constraints violated" in text or "Suggested fixes" in text:
            return None, shape, text
        raise NotTraceableError(f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}") from exc
    return ep, shape, ""


def trace(model: nn.Module, in_channels: int, *, align: int | None = None, spec_alignment: int = 1,
          spec_min_size: int = 1, max_rounds: int = 6) -> TraceResult:
    """Trace ``model`` with dynamic N, H, W, deriving the alignment and minimum size it needs.

    Args:
        model: The module (eval mode).
        in_channels: Input channels of the sample.
        align: ``None`` for automatic; an int forces that alignment (1 = every size).
        spec_alignment: The alignment the variant's spec requires (a floor for ``auto``).
        spec_min_size: The variant's stated minimum H/W.
        max_rounds: How many re-traces to allow while the alignment/min size is refined.

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
        ep, shape, message = _export_once(model, in_channels, cur_align, min_size)
        if ep is not None:
            if cur_align > 1:
                min_size = round_up(min_size, cur_align)
            return TraceResult(ep, cur_align, min_size, shape, True, notes, all_guards)
        fixes = parse_constraint_violation(message, cur_align)
        all_guards.extend(g for g in fixes.guards if g not in all_guards)
        new_align = math.lcm(cur_align, fixes.modulus)
        new_min = max(min_size, fixes.min_size)
        if any(k in fixes.static for k in ("H", "W", "_H", "_W", "N")):
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

