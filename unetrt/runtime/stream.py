"""Segment many images with the model kept busy: reader threads -> bounded queues -> shape-bucketed batches
-> one runner -> post-processing and writer threads.

The batch-level pieces live in :mod:`unetrt.runtime.segment` (a Ray Data job reuses them):
:class:`~unetrt.runtime.segment.Segmenter` turns a batch of decoded images into predictions and
:class:`~unetrt.runtime.segment.MaskWriter` writes one mask. :func:`iter_predictions` runs the threaded
pipeline over paths and yields one :class:`~unetrt.runtime.segment.ImageResult` per input as it completes;
:func:`predict_many` collects them.

Memory stays bounded at any dataset size: each queue holds a few batches, and images waiting for a batch
of their shape are flushed once more than ``4 * batch`` wait. Masks are the ones :func:`predict` gives
image by image: images of one size share an ``infer`` call, each is cropped and post-processed alone.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..errors import InputError, UnetrtError
from .base import Runner
from .predict import Prediction
from .segment import ImageResult, MaskWriter, Prepared, Segmenter
from .transforms import load_image

__all__ = ["iter_predictions", "predict_many"]

_DONE = object()


@dataclass
class _Work:
    index: int
    path: Path
    target: Path | None
    prepared: Prepared | None = None
    t_read: float = 0.0
    logits: Any = None
    t_infer: float = 0.0
    batch: int = 1


class _Pipeline:
    """Threads and queues of one :func:`iter_predictions` run."""

    def __init__(self, segmenter: Segmenter, writer: MaskWriter | None, work: list[_Work], batch: int, readers: int,
                 writers: int, keep_arrays: bool, decode: Callable[[Path], np.ndarray]):
        self.seg, self.writer, self.batch, self.keep, self.decode = segmenter, writer, batch, keep_arrays, decode
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self.todo = iter(work)
        self.todo_lock = threading.Lock()
        self.decoded: queue.Queue = queue.Queue(maxsize=2 * batch + readers)
        self.ready: queue.Queue = queue.Queue(maxsize=2 * batch + writers)
        self.results: queue.Queue = queue.Queue()
        self.readers_left = readers
        self.lock = threading.Lock()
        self.threads = ([threading.Thread(target=self._guard, args=(self._read,), daemon=True, name=f"read-{i}")
                         for i in range(readers)]
                        + [threading.Thread(target=self._guard, args=(self._infer,), daemon=True, name="infer")]
                        + [threading.Thread(target=self._guard, args=(self._write,), daemon=True, name=f"write-{i}")
                           for i in range(writers)])
        self.n_writers = writers

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _guard(self, fn) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            if self.fatal is None:
                self.fatal = exc
            self.stop.set()

    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _error(self, w: _Work, exc: BaseException) -> None:
        msg = exc.what if isinstance(exc, UnetrtError) else f"{type(exc).__name__}: {exc}"
        self.results.put(ImageResult(w.index, str(w.path), None, "error", error=str(exc) if isinstance(
            exc, UnetrtError) else msg))

    def _read(self) -> None:
        try:
            while not self.stop.is_set():
                with self.todo_lock:
                    w = next(self.todo, None)
                if w is None:
                    return
                t = time.perf_counter()
                try:
                    w.prepared = self.seg.prepare(self.decode(w.path))
                except (UnetrtError, OSError, ValueError) as exc:
                    self._error(w, exc)
                    continue
                w.t_read = (time.perf_counter() - t) * 1e3
                if not self._put(self.decoded, w):
                    return
        finally:
            with self.lock:
                self.readers_left -= 1
                if self.readers_left == 0:
                    self._put(self.decoded, _DONE)  # never blocks once stopped (a full queue would)

    def _run(self, group: list[_Work]) -> None:
        t = time.perf_counter()
        try:
            outs = self.seg.run([w.prepared for w in group])  # type: ignore[misc]
        except InputError as exc:
            if len(group) == 1:
                return self._error(group[0], exc)
            for w in group:  # find the offending image: run them alone
                self._run([w])
            return
        per = (time.perf_counter() - t) * 1e3 / len(group)
        for w, out in zip(group, outs):
            w.logits, w.t_infer, w.batch = out, per, len(group)
            if not self._put(self.ready, w):
                return

    def _infer(self) -> None:
        buckets: dict[tuple, list[_Work]] = {}
        try:
            while not self.stop.is_set():
                try:
                    w = self.decoded.get(timeout=0.1)
                except queue.Empty:
                    continue
                if w is _DONE:
                    break
                key = w.prepared.x.shape
                buckets.setdefault(key, []).append(w)
                if len(buckets[key]) >= self.batch:
                    self._run(buckets.pop(key))
                elif sum(map(len, buckets.values())) > 4 * self.batch:  # bound what waits for a partner
                    self._run(buckets.pop(max(buckets, key=lambda k: len(buckets[k]))))
            for key in list(buckets):
                if self.stop.is_set():
                    return
                self._run(buckets.pop(key))
        finally:
            for _ in range(self.n_writers):
                self._put(self.ready, _DONE)

    def _write(self) -> None:
        while not self.stop.is_set():
            try:
                w = self.ready.get(timeout=0.1)
            except queue.Empty:
                continue
            if w is _DONE:
                return
            self.results.put(self._finish(w))

    def _finish(self, w: _Work) -> ImageResult:
        image = w.prepared.image
        full = image.shape[:2]
        pred = w.logits if isinstance(w.logits, Prediction) else self.seg.finish(w.logits, full)
        t = time.perf_counter()
        if self.writer is not None and w.target is not None:
            self.writer(pred.mask, w.target, image)
        t_write = (time.perf_counter() - t) * 1e3
        timings = {"read": w.t_read, "infer": w.t_infer if not isinstance(w.logits, Prediction)
                   else pred.timings_ms.get("infer", w.t_infer), "postprocess": pred.timings_ms.get("postprocess", 0.0),
                   "write": t_write}
        counts = np.bincount(pred.mask.ravel(), minlength=max(2, int(pred.logits_shape[1]))).tolist()
        return ImageResult(w.index, str(w.path), None if w.target is None else str(w.target), "ok", tuple(full),
                           counts, pred.mode, sum(timings.values()), timings,
                           mask=pred.mask if self.keep else None, image=image if self.keep else None)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def iter_predictions(runner: Runner, inputs: Iterable[str | os.PathLike], targets: Sequence[Path | None] | None = None,
                     *, batch: int = 4, readers: int | None = None, writers: int | None = None,
                     scale: float = 1.0, mask_threshold: float = 0.5, tile: int | None = None,
                     pad_mode: str = "replicate", mask_values: Sequence[Any] | None = None, overlay: bool = False,
                     skip_existing: bool = False, keep_arrays: bool = False,
                     decode: Callable[[Path], np.ndarray] | None = None,
                     labels: Runner | None = None) -> Iterator[ImageResult]:
    """Segment image files through the threaded pipeline; yields one :class:`ImageResult` per input as it
    completes (not in input order: ``result.index`` is the input's position).

    Args:
        runner: An active runner.
        inputs: Image paths.
        targets: Mask path per input (``None`` entries or no list: nothing written; pass ``keep_arrays``).
        batch: Images of one size per ``infer`` call (capped by an engine profile's maximum batch).
        readers: Decoding threads (default: 2, at most the CPU count).
        writers: Post-processing and writing threads (default: 2, at most the CPU count).
        scale, mask_threshold, tile, pad_mode: As for :func:`~unetrt.runtime.predict.predict`.
        mask_values, overlay: How masks are written (see :class:`MaskWriter`).
        skip_existing: Inputs whose mask file exists are not read (``status="skipped"``): resumes a run.
        keep_arrays: Keep each mask and decoded image on its result.
        decode: Path -> image array (default: :func:`~unetrt.runtime.transforms.load_image` with the model's
            channels: EXIF orientation, every Pillow mode).
        labels: An active runner of the labels graph, used where it applies (see :class:`Segmenter`).

    Stopping the iteration (``break``, an exception, Ctrl-C in the consuming thread) stops the threads;
    finished masks stay (each written atomically), nothing half-written is left.

    Raises:
        UnetrtError: The first fatal error of a worker (the runner failing, an unwritable output); errors of
            single images (unreadable, too small) are results with ``status="error"`` instead.
    """
    paths = [Path(p) for p in inputs]
    outs = list(targets) if targets is not None else [None] * len(paths)
    if len(outs) != len(paths):
        raise InputError(f"{len(outs)} targets for {len(paths)} inputs", "one target per input", "fix targets")
    if batch < 1:
        raise InputError(f"batch={batch}", "a positive batch size", "fix batch")
    cpus = os.cpu_count() or 1
    readers = readers or min(2, cpus)
    writers = writers or min(2, cpus)
    seg = Segmenter(runner, scale=scale, mask_threshold=mask_threshold, tile=tile, pad_mode=pad_mode, labels=labels)
    writer = MaskWriter(mask_values, seg.classes, overlay)
    work = []
    for i, (p, t) in enumerate(zip(paths, outs)):
        if skip_existing and t is not None and os.path.isfile(t):
            yield ImageResult(i, str(p), str(t), "skipped")
            continue
        work.append(_Work(i, p, None if t is None else Path(t)))
    if not work:
        return
    channels = seg.channels
    pipe = _Pipeline(seg, writer, work, batch, readers, writers, keep_arrays,
                     decode or (lambda p: load_image(p, channels)))
    pipe.start()
    try:
        for _ in range(len(work)):
            while True:
                try:
                    result = pipe.results.get(timeout=0.1)
                    break
                except queue.Empty:
                    if pipe.fatal is not None:
                        raise pipe.fatal from None
            yield result
    finally:
        pipe.close()
    if pipe.fatal is not None:
        raise pipe.fatal


def predict_many(runner: Runner, inputs: Iterable[str | os.PathLike], targets: Sequence[Path | None] | None = None,
                 **kw: Any) -> list[ImageResult]:
    """:func:`iter_predictions` collected in input order."""
    return sorted(iter_predictions(runner, inputs, targets, **kw), key=lambda r: r.index)
