"""Parity sweep: ONNX Runtime (CPU) against eager PyTorch over admissible sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ParityError
from ..models.geometry import round_up
from ..parity import FP32_TOLERANCE, Tolerance, compare


@dataclass(frozen=True)
class SweepSize:
    batch: int
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.batch, self.height, self.width



def sweep_sizes(alignment: int, min_size: int, *, residues: int = 16, static: tuple[int, int, int] | None = None,
                base: int = 32) -> list[SweepSize]:
    """Sizes that exercise every code path the graph admits.

    Args:
        alignment: H and W are multiples of this.
        min_size: Smallest admissible H/W.
        residues: For ``alignment == 1``: cover every residue of H and of W modulo this
            (16 for four 2× poolings; the TorchScript fallback uses 32), all non-square.
        static: ``(batch, H, W)`` for a static graph: the one admissible shape.
        base: Lower bound of the sweep's typical size (keeps it cheap).
    """
    if static is not None:
        return [SweepSize(*static)]
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
    unique: list[SweepSize] = []
    for s in sizes:
        if s not in unique:
            unique.append(s)
    return unique


def make_session(onnx_path: str, threads: int | None = None):
    """An ONNX Runtime CPU session."""
    from ..artifacts.ort import make_session

    return make_session(onnx_path, threads=threads)


def eager_outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out = model(torch.from_numpy(x))
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.float().numpy()


def verify(model: nn.Module, onnx_path: str, in_channels: int, sizes: Sequence[SweepSize], *,
           tolerance: Tolerance = FP32_TOLERANCE, seed: int = 0, input_dtype=np.float32,
           on_size: Callable[[SweepSize], None] | None = None) -> list[dict]:
    """Run the sweep; one row per size with shape, errors and pass/fail.

    Rows of a failed size carry ``passed: False`` and a ``reason``; ORT errors (a graph
    that cannot run at that size) are rows too, so the whole table is shown.
    """
    session = make_session(onnx_path)
    input_name = session.get_inputs()[0].name
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        if on_size:
            on_size(size)
        x = rng.standard_normal((size.batch, in_channels, size.height, size.width)).astype(np.float32)
        ref = eager_outputs(model, x)
        row = {"input_shape": [size.batch, in_channels, size.height, size.width]}
        try:
            got = session.run(None, {input_name: x.astype(input_dtype)})[0]
        except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
            row.update(output_shape=None, passed=False, reason=f"onnxruntime failed: {str(exc).splitlines()[0]}")
            rows.append(row)
            continue
        parity = compare(ref, got, tolerance)
        row.update(output_shape=list(np.shape(got)), **{k: v for k, v in parity.to_dict().items() if k != "shape"})
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """Plain-text parity table (for errors and logs; the CLI renders a rich one)."""
    lines = [f"{'input':>18} {'output':>18} {'max_abs':>10} {'mean_abs':>10} {'rel_range':>10} {'argmax':>8}  ok"]
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        out = "x".join(map(str, r["output_shape"])) if r.get("output_shape") else "-"
        if "max_abs" in r:
            lines.append(f"{shape:>18} {out:>18} {r['max_abs']:>10.3g} {r['mean_abs']:>10.3g} "
                         f"{r['rel_to_range']:>10.3g} {r['argmax_agreement']:>8.2%}  {'yes' if r['passed'] else 'NO'}")
        else:
            lines.append(f"{shape:>18} {out:>18} {'-':>10} {'-':>10} {'-':>10} {'-':>8}  NO")
        if not r["passed"] and r.get("reason"):
            lines.append(f"{'':>18} {r['reason']}")
    return "\n".join(lines)


def check(rows: Sequence[dict], what: str) -> None:
    """Raise ParityError (with the table) if any row failed."""
    failed = [r for r in rows if not r["passed"]]
    if not failed:
        return
    first = failed[0]
    shape = "x".join(map(str, first["input_shape"]))
    raise ParityError(f"{what} parity failed at {len(failed)}/{len(rows)} sizes (first: input {shape}: "
                      f"{first.get('reason', '')})", "outputs within tolerance at every admissible size",
                      "inspect the table; export with --align N or --static if the model branches on sizes",
                      table=format_table(rows))
