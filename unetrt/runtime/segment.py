"""One batch of decoded images -> masks, and one mask -> files: the pieces the streaming pipeline
(:mod:`unetrt.runtime.stream`) and a Ray Data job (:mod:`unetrt.runtime.ray_predict`) share.

:class:`Segmenter` is a callable holding one runner, turning a batch of decoded images into
:class:`~unetrt.runtime.predict.Prediction` objects (no file I/O); images of one size share an ``infer``
call, each is cropped and post-processed alone, so masks are the ones :func:`predict` gives image by image.
:class:`MaskWriter` writes one mask (and overlay) atomically; :class:`ImageResult` is a row of the results
index.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from ..errors import InputError
from .base import Runner
from .predict import Prediction, _channels, _constraint, _geometry, predict
from .transforms import align_pad, crop, preprocess

__all__ = ["Segmenter", "MaskWriter", "ImageResult", "Prepared"]


class Logits(NamedTuple):
    """Cropped logits of one image (``1xKxhxw``: float32 numpy, or a torch tensor on a CUDA runner's
    device) and how they were produced (``"direct"``, ``"aligned"``, ``"batched xN"``)."""

    logits: Any
    mode: str


class Labels(NamedTuple):
    """Cropped uint8 labels of one image (``1x1xhxw``) from a labels graph (``model_labels.onnx``)."""

    labels: np.ndarray
    mode: str


@dataclass
class Prepared:
    """One decoded image and its network input (``1xCxhxw`` float32)."""

    image: np.ndarray
    x: np.ndarray


class Segmenter:
    """Batch of decoded images -> masks with one active runner; thread-compatible pieces for a pipeline.

    ``segmenter(images)`` does everything; a pipeline calls :meth:`prepare` in reader threads, :meth:`run`
    in one runner thread (on images of one shape) and :meth:`finish` in writer threads.

    Args:
        runner: An active runner.
        scale: milesial's ``--scale`` (resize factor before the network).
        mask_threshold: Sigmoid threshold of one-class models.
        tile: Sliding-window tile for images larger than it.
        pad_mode: Alignment padding (``"replicate"``, ``"reflect"``, ``"constant"``).
        labels: An active runner of the export's labels graph (``model_labels.onnx``, uint8 labels out),
            used for the images it applies to: ``scale == 1`` (no resize of its output), same geometry, one
            aligned ``infer`` (no tiling) and, for one class, the threshold it was built with; the others go
            to ``runner``. ``runner`` itself may be a labels runner: images it cannot segment are then refused.

    Raises:
        InputError: A labels runner whose one-class threshold is not ``mask_threshold``.
    """

    def __init__(self, runner: Runner, *, scale: float = 1.0, mask_threshold: float = 0.5, tile: int | None = None,
                 pad_mode: str = "replicate", labels: Runner | None = None):
        self.runner, self.scale, self.mask_threshold, self.tile, self.pad_mode = runner, scale, mask_threshold, tile, pad_mode
        self.name, self.constraint = _constraint(runner)
        self.channels = _channels(self.constraint)
        self.max_batch = self.constraint.max_shape[0] if self.constraint.max_shape else None
        self.labels_only = labels is None and labels_runner_form(runner) is not None
        self.labels = runner if self.labels_only else labels
        self.classes = _classes(runner)
        if self.labels is not None:
            form = labels_runner_form(self.labels)
            if form is None:
                raise InputError(f"labels runner {self.labels.name!r} returns "
                                 f"{next(iter(self.labels.output_metadata.values())).dtype}",
                                 "a runner of model_labels.onnx (uint8 labels)", "pass the labels graph's runner")
            if form.classes is None:
                raise InputError(f"labels runner {self.labels.name!r} has no manifest labels section",
                                 "model_labels.onnx of an export directory (its classes and threshold)",
                                 "open it beside its manifest.json")
            if form.classes == 1 and form.mask_threshold != mask_threshold:
                raise InputError(f"labels graph built for --mask-threshold {form.mask_threshold:g}, asked for "
                                 f"{mask_threshold:g}", "the threshold the labels graph decides with",
                                 "use that threshold, or the logits graph")
            self.classes = form.classes

    def __call__(self, images: Sequence[Any]) -> list[Prediction]:
        prepared = [self.prepare(im) for im in images]
        out: list[Prediction | None] = [None] * len(prepared)
        order = sorted(range(len(prepared)), key=lambda i: prepared[i].x.shape)
        for _, group in itertools.groupby(order, key=lambda i: prepared[i].x.shape):
            idx = list(group)
            for i, pred in zip(idx, self.run([prepared[i] for i in idx])):
                out[i] = pred if isinstance(pred, Prediction) else self.finish(pred, prepared[i].image.shape[:2])
        return out  # type: ignore[return-value]

    def prepare(self, image: Any) -> Prepared:
        """Decoded image (array or PIL image) -> network input (thread-safe, no runner call)."""
        img = np.asarray(image) if not hasattr(image, "mode") else image
        x = preprocess(img, self.scale, self.channels)
        return Prepared(np.asarray(img) if not isinstance(img, np.ndarray) else img, x)

    def _batchable(self, x: np.ndarray) -> bool:
        c = self.constraint
        if _geometry(self.runner) != "same" or min(x.shape[-2:]) < c.min_size:
            return False
        if c.max_shape and any(a > b for a, b in zip(x.shape[-2:], c.max_shape[-2:])):
            return False
        return self.tile is None or max(x.shape[-2:]) <= self.tile

    def _labels_apply(self, x: np.ndarray) -> bool:
        """Whether the labels graph gives this input's mask as it is (no resize, no tiling)."""
        return self.labels is not None and self.scale == 1.0 and self._batchable(x)

    def run(self, items: Sequence[Prepared]) -> list[Logits | Labels | Prediction]:
        """One ``infer`` per chunk of equally shaped items: per item its cropped :class:`Logits` (or
        :class:`Labels` from the labels graph), or a finished :class:`Prediction` for images that need
        tiling / overlap-tile (run alone)."""
        if not items:
            return []
        if self.labels_only and not self._labels_apply(items[0].x):
            h, w = items[0].x.shape[-2:]
            raise InputError(f"image {w}x{h} (--scale {self.scale:g}) needs a resize or tiling of the output",
                             "--scale 1 and an image the graph takes whole",
                             "run the logits graph (model.onnx) for it")
        if self._labels_apply(items[0].x):
            return self._run_labels(items)
        if not self._batchable(items[0].x):
            return [predict(self.runner, it.image, scale=self.scale, mask_threshold=self.mask_threshold,
                            tile=self.tile, pad_mode=self.pad_mode) for it in items]
        step = self.max_batch or len(items)
        out: list[Any] = []
        for start in range(0, len(items), step):
            chunk = items[start:start + step]
            xs = chunk[0].x if len(chunk) == 1 else np.concatenate([it.x for it in chunk])
            logits, padded = self._infer(xs)
            mode = f"batched x{len(chunk)}" if len(chunk) > 1 else ("aligned" if padded else "direct")
            out.extend(Logits(logits[i:i + 1], mode) for i in range(len(chunk)))
        return out

    def _run_labels(self, items: Sequence[Prepared]) -> list[Labels]:
        runner = self.labels
        name, c = _constraint(runner)
        step = (c.max_shape[0] if c.max_shape else None) or len(items)
        out: list[Labels] = []
        for start in range(0, len(items), step):
            chunk = items[start:start + step]
            xs = chunk[0].x if len(chunk) == 1 else np.concatenate([it.x for it in chunk])
            padded, box = align_pad(xs, c.alignment, self.pad_mode, min_size=c.min_size)
            got = runner.infer({name: padded.astype(c.dtype)})[next(iter(runner.output_metadata))]
            labels = np.array(crop(got, box), dtype=np.uint8)
            mode = f"batched x{len(chunk)}" if len(chunk) > 1 else ("aligned" if padded.shape != xs.shape else "direct")
            out.extend(Labels(labels[i:i + 1], f"labels {mode}") for i in range(len(chunk)))
        return out

    def _infer(self, xs: np.ndarray) -> tuple[Any, bool]:
        """One ``infer`` (outputs left on the device by CUDA runners), cropped; owns its memory (a runner
        may reuse its buffers). Host outputs come back as float32 numpy, device outputs as torch tensors."""
        c = self.constraint
        padded, box = align_pad(xs, c.alignment, self.pad_mode, min_size=c.min_size)
        out = self.runner.infer({self.name: padded.astype(c.dtype)}, to_host=False)
        logits = crop(out[next(iter(self.runner.output_metadata))], box)
        if isinstance(logits, np.ndarray) or not hasattr(logits, "device"):
            return np.array(logits, dtype=np.float32), padded.shape != xs.shape
        return logits.float().clone(), padded.shape != xs.shape

    def finish(self, logits: Logits | Labels, full_size: tuple[int, int]) -> Prediction:
        """Cropped logits -> the mask at the image's full size (thread-safe). Host logits are post-processed
        in numpy; device logits (a CUDA runner's torch tensors) are resized, argmaxed or thresholded on their
        device, and only the uint8 labels are copied back (:mod:`unetrt.runtime.device_masks`)."""
        t = time.perf_counter()
        if isinstance(logits, Labels):
            mask = logits.labels[0, 0].astype(np.int64)
            if mask.shape != tuple(full_size):
                raise InputError(f"labels of size {mask.shape} for an image of {tuple(full_size)}",
                                 "labels at the image's size", "use the logits graph")
            h, w = mask.shape
            return Prediction(mask, (1, self.classes or int(mask.max(initial=0)) + 1, h, w), logits.mode,
                              {"postprocess": (time.perf_counter() - t) * 1e3})
        if isinstance(logits.logits, np.ndarray):
            from .masks import logits_to_mask

            mask = logits_to_mask(logits.logits, full_size, self.mask_threshold)
        else:
            from .device_masks import device_labels, labels_to_host

            mask = labels_to_host(device_labels(logits.logits, full_size, self.mask_threshold))
        return Prediction(mask, tuple(logits.logits.shape), logits.mode,
                          {"postprocess": (time.perf_counter() - t) * 1e3})


def labels_runner_form(runner: Runner):
    """The :class:`~unetrt.artifacts.sections.LabelsForm` of a runner whose output is integer labels (from its
    manifest; without one, a form whose ``classes`` is ``None``), ``None`` for a logits runner."""
    from types import SimpleNamespace

    meta = next(iter(runner.output_metadata.values()), None)
    if meta is None or meta.dtype not in ("uint8", "int32", "int64"):
        return None
    form = runner.manifest.onnx.labels if runner.manifest is not None else None
    return form if form is not None else SimpleNamespace(classes=None, mask_threshold=None)


def _classes(runner: Runner) -> int | None:
    """The model's classes: the manifest's, else the logits' channels when the graph fixes them."""
    if runner.manifest is not None:
        return int(runner.manifest.output.classes) or None
    meta = next(iter(runner.output_metadata.values()), None)
    k = meta.shape[1] if meta is not None and len(meta.shape) > 1 else None
    return k if isinstance(k, int) and meta.dtype not in ("uint8", "int32", "int64") else None


class MaskWriter:
    """Write one mask file (format from its suffix) and optionally ``<name>_OVERLAY.png``, atomically.

    Args:
        mask_values: milesial's value per class, or ``None`` (index PNG for more than two classes).
        classes: The model's class count (decides index vs binary PNG without ``mask_values``).
        overlay: Also write the mask blended over the image.
    """

    def __init__(self, mask_values: Sequence[Any] | None = None, classes: int | None = None, overlay: bool = False):
        self.mask_values, self.classes, self.overlay = mask_values, classes, overlay

    @staticmethod
    def overlay_path(target: Path) -> Path:
        return target.with_name(target.stem.removesuffix("_OUT") + "_OVERLAY.png")

    def __call__(self, mask: np.ndarray, target: str | os.PathLike, image: np.ndarray | None = None) -> Path:
        from ..fileio import atomic_path
        from .masks import save_mask
        from .predict import overlay as blend
        from .transforms import to_pil_image

        target = Path(target)
        save_mask(mask, target, self.mask_values, self.classes)
        if self.overlay and image is not None:
            with atomic_path(self.overlay_path(target)) as tmp:
                to_pil_image(blend(image, mask)).save(tmp, format="PNG")
        return target


@dataclass
class ImageResult:
    """What happened to one input: a row of the results index.

    ``status`` is ``"ok"``, ``"skipped"`` (its output existed, ``skip_existing``) or ``"error"`` (``error``
    says why, in one line). ``mask``/``image`` are kept only when asked (``keep_arrays``).
    """

    index: int
    input: str
    output: str | None
    status: str = "ok"
    size: tuple[int, int] | None = None
    class_pixels: list[int] | None = None
    mode: str | None = None
    ms: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    mask: np.ndarray | None = None
    image: np.ndarray | None = None

    def row(self) -> dict[str, Any]:
        """JSON-able index row (no arrays)."""
        return {"input": self.input, "output": self.output, "status": self.status,
                "size": list(self.size) if self.size else None, "class_pixels": self.class_pixels,
                "mode": self.mode, "ms": None if self.ms is None else round(self.ms, 3),
                "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()}, "error": self.error}
