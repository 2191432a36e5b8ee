"""Parity sweep: ONNX Runtime (CPU) against eager PyTorch over admissible sizes."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from rich import box
from rich.console import Console
from rich.table import Table
from torch import nn

from ..artifacts.sections import OutputCheck, ParityRow
from ..errors import ParityError
from ..models.geometry import round_up
from ..parity import FP32_TOLERANCE, Tolerance, compare


@dataclass(frozen=True)
class SweepSize:
    """One verification input size: batch and H, W (and D for a volume)."""

    batch: int
    height: int
    width: int
    depth: int | None = None

    @property
    def spatial(self) -> tuple[int, ...]:
        """``(H, W)`` or ``(D, H, W)``."""
        return (self.height, self.width) if self.depth is None else (self.depth, self.height, self.width)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.batch, *self.spatial)


def _volume(batch: int, d: int, h: int, w: int) -> SweepSize:
    return SweepSize(batch, h, w, d)


def _sweep_3d(alignment: int, lo: int, residues: int, base: int = 16) -> list[SweepSize]:
    """Few, small volumes: a cube at batch 2, non-cubic ones, the minimum; odd ones without alignment."""
    a = alignment
    if a > 1:
        s = round_up(max(lo, base), a)
        m = round_up(lo, a)
        return [_volume(2, s, s, s), _volume(1, s, s + a, s + 2 * a), _volume(1, s + a, s, s), _volume(1, m, m + a, m),
                _volume(1, m, m, m)]
    start = round_up(max(lo, base), residues)
    sizes = [_volume(2, start, start, start), _volume(1, lo, lo + 1, lo + 2)]
    for r in range(0, residues, 3):  # every third residue per axis, each axis shifted differently
        sizes.append(_volume(1, start + r, start + (5 * r + 3) % residues, start + (3 * r + 7) % residues))
    return sizes + [_volume(1, lo, lo, lo)]


def sweep_sizes(alignment: int, min_size: int, *, residues: int = 16, static: tuple[int, ...] | None = None,
                base: int = 32, spatial_dims: int = 2) -> list[SweepSize]:
    """Sizes that exercise every code path the graph admits.

    Args:
        alignment: Every spatial size is a multiple of this.
        min_size: Smallest admissible spatial size.
        residues: For ``alignment == 1``: cover every residue of H and of W modulo this
            (16 for four 2× poolings; the TorchScript fallback uses 32), all non-square
            (volumes: every third residue, small sizes). The minimum size square (cubic) is
            always last: the smallest bottleneck, where e.g. instance norm has one element.
        static: ``(batch, H, W)`` (or ``(batch, D, H, W)``) for a static graph: the one admissible shape.
        base: Lower bound of the sweep's typical size (keeps it cheap).
        spatial_dims: 2 (H, W) or 3 (D, H, W).
    """
    if static is not None:
        return [_volume(*static) if len(static) == 4 else SweepSize(*static)]
    if spatial_dims == 3:
        return list(dict.fromkeys(_sweep_3d(alignment, max(min_size, 1), residues)))
    lo = max(min_size, 1)
    if alignment > 1:
        k = max(round_up(max(lo, base), alignment) // alignment, 1)
        m = round_up(lo, alignment)
        sizes = [SweepSize(2, alignment * k, alignment * k), SweepSize(1, alignment * k, alignment * (k + 1)),
                 SweepSize(1, alignment * (k + 2), alignment * k), SweepSize(1, m, m + alignment)]
    else:
        start = round_up(max(lo, base), residues)
        sizes = [SweepSize(2, start, start), SweepSize(1, lo, lo + 1), SweepSize(1, 3 * start + 5, 2 * start + 7)]
        for r in range(residues):
            sizes.append(SweepSize(1, start + r, start + (5 * r + 3) % residues))
        m = lo
    sizes.append(SweepSize(1, m, m))  # the minimum on every axis at once (the smallest bottleneck)
    unique: list[SweepSize] = []
    for s in sizes:
        if s not in unique:
            unique.append(s)
    return unique


def make_session(onnx_path: str, threads: int | None = None):
    """An ONNX Runtime CPU session."""
    from ..artifacts.ort import make_session

    return make_session(onnx_path, threads=threads)


def eager_all(model: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """Every output tensor of ``model(x)`` (a tensor, or a list/tuple/dict of them), in export order."""
    from torch.utils._pytree import tree_leaves

    with torch.inference_mode():
        out = model(torch.from_numpy(x))
    return [t.float().numpy() for t in tree_leaves(out) if isinstance(t, torch.Tensor)]


def eager_outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The first output of ``model(x)`` as float32 numpy."""
    return eager_all(model, x)[0]


def verify(model: nn.Module, onnx_path: str, in_channels: int, sizes: Sequence[SweepSize], *,
           tolerance: Tolerance = FP32_TOLERANCE, seed: int = 0, input_dtype=np.float32,
           on_size: Callable[[SweepSize], None] | None = None) -> list[ParityRow]:
    """Run the sweep; one :class:`ParityRow` per size with shapes, errors and pass/fail.

    A size that could not be compared (eager or ONNX Runtime failed, or the output counts differ) is a
    failed row with a ``reason``, so the whole table is shown.
    """
    session = make_session(onnx_path)
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        if on_size:
            on_size(size)
        shape = [size.batch, in_channels, *size.spatial]
        x = rng.standard_normal(shape).astype(np.float32)
        try:
            refs = eager_all(model, x)
        except Exception as exc:  # the model's own error at a size the export claims to admit
            text = [ln for ln in str(exc).splitlines() if ln.strip()]
            rows.append(_failed_row(shape, None, f"eager PyTorch failed: {type(exc).__name__}: "
                                                 f"{text[-1] if text else ''}"[:300]))
            continue
        try:
            got = session.run(None, {input_name: x.astype(input_dtype)})
        except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
            rows.append(_failed_row(shape, None, f"onnxruntime failed: {str(exc).splitlines()[0]}"))
            continue
        if len(got) != len(refs):
            rows.append(_failed_row(shape, list(np.shape(got[0])),
                                    f"the ONNX graph has {len(got)} outputs, eager returns {len(refs)}"))
            continue
        parities = [compare(r, g, tolerance) for r, g in zip(refs, got)]
        metrics = {k: v for k, v in parities[0].to_dict().items() if k != "shape"}
        outputs = None
        if len(parities) > 1:
            outputs = [OutputCheck(name=n, shape=list(p.shape), max_abs=p.max_abs, passed=p.passed, reason=p.reason)
                       for n, p in zip(names, parities)]
            bad = [o for o in outputs if not o.passed]
            if bad:
                metrics.update(passed=False, reason=f"output {bad[0].name!r}: {bad[0].reason}")
        rows.append(ParityRow(input_shape=shape, output_shape=list(np.shape(got[0])), outputs=outputs, **metrics))
    return rows


def _failed_row(shape: list[int], output_shape: list[int] | None, reason: str) -> ParityRow:
    """A size that could not be compared: no error figures, only why."""
    empty = dict.fromkeys(("max_abs", "mean_abs", "p99_abs", "max_rel", "rel_to_range", "argmax_agreement",
                           "argmax_agreement_all", "decisive_fraction", "mean_iou", "dice", "atol"))
    return ParityRow(input_shape=shape, output_shape=output_shape, passed=False, reason=reason, **empty)


def parity_table(rows: Sequence[ParityRow], title: str | None = None, *, markup: bool = False) -> Table:
    """The sweep's parity rows as a rich table (a ``reason`` column when a failed row has one).

    ``markup`` colours the pass/fail column (for a terminal); the plain form goes into error messages.
    """
    reasons = any(not r.passed and r.reason for r in rows)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("input", "output", "max_abs", "mean_abs", "rel_range", "argmax", "ok"):
        table.add_column(col, justify="right")
    if reasons:
        table.add_column("reason", justify="left")
    ok, bad = ("[green]yes[/]", "[red]NO[/]") if markup else ("yes", "NO")
    for r in rows:
        cells = ["x".join(map(str, r.input_shape)), "x".join(map(str, r.output_shape)) if r.output_shape else "-"]
        if r.compared:
            cells += [f"{r.max_abs:.3g}", f"{r.mean_abs:.3g}", f"{r.rel_to_range:.3g}", f"{r.argmax_agreement:.2%}",
                      ok if r.passed else bad]
        else:
            cells += ["-", "-", "-", "-", bad]
        if reasons:
            cells.append("" if r.passed else r.reason)
        table.add_row(*cells)
    return table


def format_table(rows: Sequence[ParityRow]) -> str:
    """The parity table as plain text (for errors and logs): no colours, never wrapped."""
    console = Console(file=io.StringIO(), width=4096, color_system=None, soft_wrap=True)
    console.print(parity_table(rows), crop=False)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines() if line.strip())


def check(rows: Sequence[ParityRow], what: str, fix: str | None = None) -> None:
    """Raise ParityError (with the table) if any row failed (``fix``: a known cause's remedy)."""
    failed = [r for r in rows if not r.passed]
    if not failed:
        return
    first = failed[0]
    shape = "x".join(map(str, first.input_shape))
    raise ParityError(f"{what} parity failed at {len(failed)}/{len(rows)} sizes (first: input {shape}: "
                      f"{first.reason})", "outputs within tolerance at every admissible size",
                      fix or "inspect the table; export with --align N or --static if the model branches on sizes",
                      table=format_table(rows))
