"""The runner contract shared by every backend (eager PyTorch, ONNX Runtime, TensorRT).

A runner has a lifecycle (``activate`` → ``infer``... → ``deactivate``, or ``with runner:``) and maps
named inputs to named outputs. The base class validates every feed once, for every backend, before
the backend sees it: input names, rank, channels, dtype (exact) and the admissible shape range (the
model's minimum size and alignment, a static export shape, an engine profile's min/max).
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..artifacts.manifest import InputSection, Manifest
from ..errors import InputError, RunnerError

__all__ = ["Runner", "TensorMeta", "InputConstraint", "dtype_name", "format_shape"]


class TensorMeta(NamedTuple):
    """Dtype name (numpy spelling, e.g. ``"float32"``) and shape (``None`` for a dynamic dimension)."""

    dtype: str
    shape: tuple[int | None, ...]


def dtype_name(value: Any) -> str:
    """Numpy-style dtype name of an array, a torch tensor or a dtype (``torch.float16`` -> ``"float16"``)."""
    dtype = getattr(value, "dtype", value)
    text = str(dtype)
    if text.startswith("torch."):
        return text[len("torch."):]
    return np.dtype(dtype).name


def format_shape(shape) -> str:
    """``(1, 3, None, 64)`` -> ``"1x3x?x64"``."""
    return "x".join("?" if d is None or (isinstance(d, int) and d < 0) else str(d) for d in shape)


@dataclass(frozen=True)
class InputConstraint:
    """What one input accepts.

    Attributes:
        name: Tensor name.
        dtype: Exact dtype name (``"float32"``, ``"float16"``, ...).
        shape: Shape with ``None`` for dynamic dimensions (e.g. ``(None, 3, None, None)``).
        min_shape: Per-dimension lower bounds (an engine profile's min), or ``None``.
        max_shape: Per-dimension upper bounds (an engine profile's max), or ``None``.
        min_size: Smallest H and W (the last two dimensions of a rank-4 NCHW input).
        alignment: H and W must be multiples of this.
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...]
    min_shape: tuple[int, ...] | None = None
    max_shape: tuple[int, ...] | None = None
    min_size: int = 1
    alignment: int = 1

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """Axes H and W count as spatial (NCHW rank 4); none for other ranks."""
        return (2, 3) if len(self.shape) == 4 else ()

    def bounds(self) -> list[tuple[int, int | None]]:
        """``(low, high)`` per dimension; ``high`` is ``None`` when unbounded."""
        out = []
        for axis, dim in enumerate(self.shape):
            if dim is not None:
                out.append((dim, dim))
                continue
            low = self.min_shape[axis] if self.min_shape else 1
            high = self.max_shape[axis] if self.max_shape else None
            if axis in self.spatial_axes:
                low = max(low, self.min_size)
            out.append((max(low, 1), high))
        return out

    def _letters(self) -> list[str]:
        return list("NCHW") if len(self.shape) == 4 else [f"d{i}" for i in range(len(self.shape))]

    def describe(self) -> str:
        """Admissible shapes in words, e.g. ``Nx3xHxW float32, N >= 1, H, W >= 16, H and W multiples of 16``."""
        letters, bounds = self._letters(), self.bounds()
        dims, rules = [], []
        for axis, ((low, high), dim) in enumerate(zip(bounds, self.shape)):
            dims.append(str(dim) if dim is not None else letters[axis])
            if dim is None and not (axis == 3 and self.shape[2] is None and bounds[2] == bounds[3]):
                label = "H, W" if axis == 2 and self.shape[3] is None and bounds[2] == bounds[3] else letters[axis]
                rules.append(f"{label} in [{low}, {high}]" if high is not None else f"{label} >= {low}")
        if self.alignment > 1 and self.spatial_axes:
            rules.append(f"H and W multiples of {self.alignment}")
        text = "x".join(dims) + f" {self.dtype}"
        return text + (", " + ", ".join(rules) if rules else "")

    def problem(self, shape: tuple[int, ...]) -> tuple[str, str] | None:
        """``(what is wrong, how to fix)`` for a shape this input refuses, ``None`` when admissible."""
        if len(shape) != len(self.shape):
            return f"rank {len(shape)}", f"pass a rank-{len(self.shape)} array (add the batch axis: x[None])"
        if len(self.shape) == 4 and self.shape[1] is not None and shape[1] != self.shape[1]:
            return (f"{shape[1]} channel(s) instead of {self.shape[1]}",
                    "convert the image (unetrt.runtime.transforms.preprocess(img, in_channels=...))")
        for axis, (low, high) in enumerate(self.bounds()):
            size, letter = shape[axis], self._letters()[axis]
            if size < low or (high is not None and size > high):
                if low == high:
                    return f"{letter} is {size}, not {low}", "use the exported static shape"
                if high is not None and size > high and axis == 0 and len(self.shape) == 4:
                    return f"N is {size} > {high}", f"split the batch into batches of at most {high}"
                if high is not None and size > high:
                    return (f"{letter} is {size} > {high}",
                            "tile it (unetrt.runtime.tiling.sliding_window) or rebuild with a larger max shape")
                return (f"{letter} is {size} < {low}",
                        "pad the image (unetrt.runtime.transforms.align_pad(x, alignment, min_size=...))")
        if self.alignment > 1:
            bad = [shape[a] for a in self.spatial_axes if shape[a] % self.alignment]
            if bad:
                return (f"H/W not a multiple of {self.alignment}",
                        f"pad it: unetrt.runtime.transforms.align_pad(x, {self.alignment})")
        return None


def _bad_input(what: str, expected: str, fix: str) -> InputError:
    return InputError(what, expected, fix)


class Runner(abc.ABC):
    """Base class of every backend runner.

    One runner may be shared by several threads: ``infer`` calls are serialised by a lock (and
    ``activate``/``deactivate`` take the same lock). For parallel throughput create one runner per
    thread (each holds its own session, context or model copy).

    Subclasses implement ``_activate`` (load the model; set ``self._inputs`` and ``self._outputs``),
    ``_infer`` and ``_deactivate`` (release memory, GPU memory included).

    Attributes:
        name: A label for reports.
        manifest: The ``manifest.json`` contents describing the artifact, or ``None``.
        notes: Facts worth showing to a user (missing manifest, fallbacks taken, ...).
        last_inference_time: Seconds spent in the backend by the last ``infer`` (input checks
            excluded; GPU work synchronised), ``None`` before the first call.
    """

    def __init__(self, name: str | None = None, manifest: Manifest | Mapping[str, Any] | None = None):
        self.name = name or type(self).__name__
        if manifest is not None and not isinstance(manifest, Manifest):
            manifest = Manifest.from_dict(dict(manifest))
        self.manifest: Manifest | None = manifest
        self.notes: list[str] = []
        self.last_inference_time: float | None = None
        self._inputs: dict[str, InputConstraint] = {}
        self._outputs: dict[str, TensorMeta] = {}
        self._active = False
        self._lock = threading.RLock()

    # lifecycle -----------------------------------------------------------------------------
    def activate(self) -> "Runner":
        """Load the model into the backend (idempotent). Returns the runner."""
        with self._lock:
            if not self._active:
                self._activate()
                self._active = True
        return self

    def deactivate(self) -> None:
        """Release the backend's resources (GPU memory included). Safe to call twice."""
        with self._lock:
            if self._active:
                try:
                    self._deactivate()
                finally:
                    self._active = False

    def __enter__(self) -> "Runner":
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    @property
    def is_active(self) -> bool:
        """Whether ``activate`` has been called (and ``deactivate`` not since)."""
        return self._active

    # metadata ------------------------------------------------------------------------------
    def _require_active(self, action: str) -> None:
        if not self._active:
            raise RunnerError(f"{self.name}: {action} before activate()", "an active runner",
                              "use `with runner:` or call runner.activate() first")

    @property
    def input_metadata(self) -> dict[str, TensorMeta]:
        """``{name: (dtype, shape)}`` of the inputs; ``None`` marks a dynamic dimension."""
        self._require_active("input_metadata")
        return {n: TensorMeta(c.dtype, c.shape) for n, c in self._inputs.items()}

    @property
    def input_constraints(self) -> dict[str, InputConstraint]:
        """``{name: InputConstraint}``: the admissible range each input is checked against."""
        self._require_active("input_constraints")
        return dict(self._inputs)

    @property
    def output_metadata(self) -> dict[str, TensorMeta]:
        """``{name: (dtype, shape)}`` of the outputs as far as known before running."""
        self._require_active("output_metadata")
        return dict(self._outputs)

    # inference -----------------------------------------------------------------------------
    def infer(self, feed: Mapping[str, Any], *, to_host: bool = True) -> dict[str, Any]:
        """Run the model.

        Args:
            feed: ``{input name: numpy array or torch tensor}``; dtypes must match exactly.
            to_host: GPU backends return numpy arrays when ``True`` (default) and torch tensors on
                their device when ``False``; CPU backends always return numpy arrays.

        Returns:
            ``{output name: array}``.

        Raises:
            RunnerError: The runner is not active.
            InputError: A missing or unknown input, or a rank, channel count, dtype or size the
                model does not accept (the message gives the admissible range).
        """
        with self._lock:
            self._require_active("infer()")
            self._check_feed(feed)
            start = time.perf_counter()
            outputs = self._infer(dict(feed), to_host)
            self.last_inference_time = time.perf_counter() - start
        return outputs

    def _check_feed(self, feed: Mapping[str, Any]) -> None:
        if not isinstance(feed, Mapping):
            raise _bad_input(f"feed is a {type(feed).__name__}", "a dict {input name: array}",
                             f"call infer({{{next(iter(self._inputs), 'input')!r}: x}})")
        expected = ", ".join(repr(n) for n in self._inputs)
        unknown = [n for n in feed if n not in self._inputs]
        missing = [n for n in self._inputs if n not in feed]
        if unknown or missing:
            what = "; ".join(filter(None, [unknown and f"unknown input(s) {unknown}",
                                           missing and f"missing input(s) {missing}"]))
            raise _bad_input(f"{self.name}: {what}", f"exactly the inputs {expected}", "rename the feed keys")
        for name, value in feed.items():
            spec = self._inputs[name]
            shape = getattr(value, "shape", None)
            if shape is None or not hasattr(value, "dtype"):
                raise _bad_input(f"input {name!r} is a {type(value).__name__}", "a numpy array or torch tensor",
                                 "convert it with np.asarray(...)")
            shape = tuple(int(d) for d in shape)
            dtype = dtype_name(value)
            if dtype != spec.dtype:
                raise _bad_input(f"input {name!r} has dtype {dtype}", f"{spec.dtype} ({spec.describe()})",
                                 f"convert it: x.astype(np.{spec.dtype}) or tensor.to(torch.{spec.dtype})")
            problem = spec.problem(shape)
            if problem:
                raise _bad_input(f"input {name!r} of shape {format_shape(shape)} is not admissible: {problem[0]}",
                                 spec.describe(), problem[1])

    # backend hooks -------------------------------------------------------------------------
    @abc.abstractmethod
    def _activate(self) -> None:
        """Load the model; fill ``self._inputs`` and ``self._outputs``."""

    @abc.abstractmethod
    def _infer(self, feed: dict[str, Any], to_host: bool) -> dict[str, Any]:
        """Run on a validated feed; synchronise before returning."""

    @abc.abstractmethod
    def _deactivate(self) -> None:
        """Free what ``_activate`` loaded."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {'active' if self._active else 'inactive'}>"


def to_numpy(value: Any) -> np.ndarray:
    """A numpy view/copy of an array or (CPU or CUDA) torch tensor."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def apply_manifest_input(spec: InputConstraint, section: InputSection | Mapping[str, Any] | None) -> InputConstraint:
    """Tighten a graph-derived constraint with a manifest's ``input`` section (min_size, alignment).

    ``section`` is the typed section, or the same fields as a mapping (the ONNX ``unetrt.input``
    metadata of a file without a manifest).
    """
    if not section:
        return spec
    get = section.get if isinstance(section, Mapping) else (lambda key: getattr(section, key, None))
    min_size = int(get("min_size") or 1)
    alignment = int(get("alignment") or 1)
    static = get("static_shape")
    shape = tuple(static) if static and len(static) == len(spec.shape) else spec.shape
    return InputConstraint(spec.name, spec.dtype, tuple(shape), spec.min_shape, spec.max_shape,
                           max(spec.min_size, min_size), max(spec.alignment, alignment))
