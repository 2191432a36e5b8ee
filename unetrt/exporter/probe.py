"""Learn which input sizes a model accepts by running it eagerly, before tracing.

A UNet that concatenates skips without padding (MONAI's ``UNet``, ``AttentionUnet``,
``DynUNet``) only runs at multiples of its downsampling factor. Traced at an odd sample it fails
inside the model, with an error that is not a shape-guard report, so the guard analysis of
:mod:`unetrt.exporter.trace` never starts. The probe runs the model (no grad, batch 1, small
sizes first): if the odd sample fails it finds the smallest alignment (powers of two up to 64,
then the product of the model's strides) at which eager succeeds at several sizes, and the
smallest size at that alignment. Tracing then starts from that alignment and the guard analysis
refines it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ExportError
from ..models.geometry import downsampling_factor, first_tensor, round_up
from .failures import explain, last_line, missing_package

POWERS = (2, 4, 8, 16, 32, 64)
#: Typical size of a probe per spatial rank (small: the probe must stay cheap).
BASE = {2: 32, 3: 16}


@dataclass
class ProbeResult:
    """What the eager probe learned.

    Attributes:
        alignment: Every spatial size must be a multiple of this.
        min_size: Smallest spatial size that ran (at ``alignment``).
        probed: ``True`` when the odd sample failed and the alignment comes from the probe.
        geometry: ``"same"`` (output size = input size), ``"valid"`` (a fixed margin less), or
            ``"scaled"`` (another size that follows the input).
        runs: Eager forward passes made.
        seconds: Time the probe took.
        notes: Facts for the manifest.
    """

    alignment: int
    min_size: int
    probed: bool
    geometry: str = "same"
    runs: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def odd_sizes(spatial_dims: int, min_size: int) -> tuple[int, ...]:
    """The alignment-1 sample's spatial sizes: odd, distinct per axis, above ``min_size``."""
    if spatial_dims == 2:
        h = max(min_size, 64) + 3
        return h, h + 10
    d = max(min_size, 32) + 3
    return d, d + 2, d + 6


class _Runner:
    """Runs the model eagerly at spatial sizes, remembering outputs and the smallest failure."""

    def __init__(self, model: nn.Module, in_channels: int):
        self.model, self.in_channels = model, in_channels
        self.runs = 0
        self.smallest_failure: tuple[int, tuple[int, ...], BaseException] | None = None
        self.outputs: dict[tuple[int, ...], tuple[int, ...]] = {}

    def __call__(self, sizes: tuple[int, ...]) -> bool:
        if sizes in self.outputs:
            return True
        param = next(self.model.parameters(), None)
        x = torch.randn((1, self.in_channels, *sizes), dtype=param.dtype if param is not None else torch.float32)
        self.runs += 1
        try:
            with torch.no_grad():
                out = first_tensor(self.model(x))
        except Exception as exc:  # the model's own error: any type
            if missing_package(exc):  # no size will help: say which package
                raise explain("eager probe", exc, shape=(1, self.in_channels, *sizes)) from exc
            numel = 1
            for s in sizes:
                numel *= s
            if self.smallest_failure is None or numel < self.smallest_failure[0]:
                self.smallest_failure = (numel, sizes, exc)
            return False
        if out is None:
            raise ExportError("eager probe: the model returned no tensor", "a tensor (or a list/tuple/dict of them)",
                              "return the logits from forward")
        self.outputs[sizes] = tuple(int(d) for d in out.shape[2:])
        return True


def _shapes(a: int, base: int, dims: int, min_size: int) -> list[tuple[int, ...]]:
    """Two distinct non-cubic shapes, multiples of ``a``, near ``base``."""
    s = round_up(max(base, min_size, a), a)
    first = tuple(s + j * a for j in range(dims))
    second = tuple(reversed(first)) if dims == 2 else (s + a, s, s + 2 * a)
    return [first, second]


def _candidates(model: nn.Module, spec_alignment: int) -> list[int]:
    out = [a for a in POWERS if a % spec_alignment == 0]
    factor = downsampling_factor(model)
    if factor and factor not in out and factor % spec_alignment == 0 and factor <= 1024:
        out.append(factor)
    return out


def _min_size(run: _Runner, a: int, dims: int, limit: int) -> int | None:
    """Smallest multiple of ``a`` (every axis at it) that runs, scanning up from ``a`` to ``limit``."""
    k = 1
    while a * k <= limit:
        if run((a * k,) * dims):
            return a * k
        k += 1
    return None


def _geometry(outputs: dict[tuple[int, ...], tuple[int, ...]]) -> str:
    """How output sizes follow input sizes; raises when they do not follow them at all."""
    items = list(outputs.items())
    if all(i == o for i, o in items):
        return "same"
    ranks = {len(o) for _, o in items}
    if ranks != {len(items[0][0])}:
        shapes = ", ".join(f"{'x'.join(map(str, i))} -> {'x'.join(map(str, o)) or 'no spatial axes'}"
                           for i, o in items[:2])
        raise ExportError(f"eager probe: the model's output has no spatial axes matching the input ({shapes})",
                          "an NxKx(D)xHxW output for an NxCx(D)xHxW input",
                          "export a segmentation model (dense per-pixel output)")
    margins = {tuple(i_ - o_ for i_, o_ in zip(i, o)) for i, o in items}
    if len(margins) == 1:
        return "valid"
    distinct_in = {i for i, _ in items}
    distinct_out = {o for _, o in items}
    if len(distinct_in) > 1 and len(distinct_out) == 1:
        (i0, o0), (i1, _) = items[0], items[1]
        raise ExportError(
            f"eager probe: the output size does not follow the input: {'x'.join(map(str, i0))} -> "
            f"{'x'.join(map(str, o0))} and {'x'.join(map(str, i1))} -> {'x'.join(map(str, o0))}",
            "an output whose size grows with the input (same size, or a fixed margin less)",
            "export a fixed size with --static --shape, or remove the fixed-size resize from the model")
    return "scaled"


def probe(model: nn.Module, in_channels: int, spatial_dims: int = 2, *, spec_alignment: int = 1,
          spec_min_size: int = 1) -> ProbeResult:
    """Run ``model`` eagerly to find the alignment and minimum size it needs.

    Args:
        model: The module, in eval mode.
        in_channels: Input channels.
        spatial_dims: 2 (NCHW) or 3 (NCDHW).
        spec_alignment: A known alignment floor (a zoo spec); candidates are multiples of it.
        spec_min_size: A known minimum size.

    Returns:
        The :class:`ProbeResult`; ``probed`` is ``False`` when the odd sample ran (the guard
        analysis then decides alone).

    Raises:
        ExportError: the model fails at every probed size (with its own error at the smallest
            probe), or its output size does not follow the input.
    """
    start = time.perf_counter()
    run = _Runner(model, in_channels)
    odd = odd_sizes(spatial_dims, spec_min_size)
    if run(odd):
        second = tuple(reversed(odd)) if spatial_dims == 2 else (odd[1], odd[2], odd[0])
        run(second)
        return ProbeResult(spec_alignment, spec_min_size, False, _geometry(run.outputs), run.runs,
                           time.perf_counter() - start)
    odd_error = last_line(run.smallest_failure[2])
    base = BASE[spatial_dims]
    for lo in (base, 4 * base):
        for a in _candidates(model, max(1, spec_alignment)):
            shapes = _shapes(a, lo, spatial_dims, spec_min_size)
            if not all(run(s) for s in shapes):
                continue
            found = _min_size(run, a, spatial_dims, max(shapes[0]) + 2 * a)
            if found is not None:
                min_size = max(spec_min_size, found)
                geometry = _geometry(run.outputs)
                seconds = time.perf_counter() - start
                note = (f"eager probe: the model fails at {'x'.join(map(str, odd))} ({odd_error}); it runs at "
                        f"multiples of {a}, from {min_size} ({run.runs} eager runs, {seconds:.2f} s)")
                return ProbeResult(a, min_size, True, geometry, run.runs, seconds, [note])
    _, sizes, exc = run.smallest_failure
    raise explain("eager probe", exc, shape=(1, in_channels, *sizes), every_size=True, model=model) from exc


def eager_minimum(model: nn.Module, in_channels: int, alignment: int, min_size: int, spatial_dims: int = 2,
                  *, steps: int = 4) -> tuple[int, str | None]:
    """The smallest size, from ``min_size`` up (``steps`` alignments, then 2, 4 and 8 times it), at which eager runs with
    every spatial axis at it (a guard-derived minimum may be one the model's own code refuses, e.g.
    instance norm over a 1x1 bottleneck).

    Returns:
        ``(min_size, note)``: ``note`` is ``None`` when ``min_size`` itself runs.

    Raises:
        ExportError: None of those sizes runs (the model's own error at ``min_size``).
    """
    run = _Runner(model, in_channels)
    lo = max(1, int(min_size))
    a = max(1, int(alignment))
    sizes = [lo + k * a for k in range(steps)] + [round_up(lo * f, a) for f in (2, 4, 8)]
    for size in sorted(set(sizes)):
        if run((size,) * spatial_dims):
            if size == lo:
                return lo, None
            _, sizes, exc = run.smallest_failure
            return size, (f"eager probe: the traced minimum {'x'.join(map(str, sizes))} fails in eager "
                          f"({last_line(exc)}); the minimum size is {size}")
    _, sizes, exc = run.smallest_failure
    raise explain("eager probe", exc, shape=(1, in_channels, *sizes), every_size=True) from exc
