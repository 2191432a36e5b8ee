"""``unet-predict --ray``: the same per-image steps as a local run, as a Ray Data job.

The paths are read with Ray's own reader (:func:`ray.data.read_binary_files`, so a cluster's workers read
them where they are), then :meth:`ray.data.Dataset.map_batches` runs :class:`SegmentActor`, a callable class
that holds one active runner per actor. Each actor decodes its images, segments them and writes the masks
itself (atomically, the same bytes as a local run), and returns one index row per image. Actors are
restarted and their batches retried when a worker dies, so a killed worker costs time, not outputs.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError, UnetrtError

#: Retries of a batch whose worker died (Ray's own default is 3 for tasks; actors are not retried unless asked).
MAX_RETRIES = 3


def require_ray():
    """Import :mod:`ray` (with Ray Data) or fail in one line naming the extra."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise UnetrtError("--ray needs Ray Data, which is not installed", "ray[data] in this environment",
                          "pip install 'unetrt[ray]'") from exc
    return ray


@dataclass(frozen=True)
class ImageJob:
    """What every actor needs to segment and save one image, independent of the cluster."""

    model: str                                   # export directory, .onnx or engine, as the workers see it
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    scale: float = 1.0
    mask_threshold: float = 0.5
    tile: int | None = None
    overlay: bool = False
    save: bool = True
    mask_values: list[Any] | None = None         # None: the manifest's, as a local run
    targets: dict[str, str] = field(default_factory=dict)   # input path (as Ray reports it) -> output path
    threads: int = 1                             # intra-op threads of an ONNX Runtime runner in one actor


def _key(path: str | os.PathLike) -> str:
    """The form in which Ray's file reader reports a local path (absolute, no scheme)."""
    return os.path.abspath(os.fspath(path))


class SegmentActor:
    """Ray Data callable class: one runner per actor, ``{"bytes", "path"}`` batches in, index rows out.

    It is the local pipeline's own pieces: :class:`~unetrt.runtime.segment.Segmenter` (images of one size
    batched into one ``infer``) and :class:`~unetrt.runtime.segment.MaskWriter`, so the masks are the bytes
    a local ``unet-predict`` writes.
    """

    def __init__(self, job: ImageJob):
        from . import load
        from .segment import MaskWriter, Segmenter

        self.job = job
        runner = load(job.model, **job.load_kwargs)
        if getattr(runner, "threads", 0) is None:
            # ONNX Runtime would size its pool to the whole node; an actor gets the CPUs Ray reserved for it.
            runner.threads = job.threads
        self.runner = runner.activate()
        manifest = self.runner.manifest
        mask_values = job.mask_values if job.mask_values is not None else \
            (manifest.mask_values if manifest is not None else None)
        self.segmenter = Segmenter(self.runner, scale=job.scale, mask_threshold=job.mask_threshold, tile=job.tile)
        meta = self.runner.output_metadata
        classes = next(iter(meta.values())).shape[1] if meta else None
        self.classes = classes if isinstance(classes, int) else None
        self.writer = MaskWriter(mask_values, self.classes, job.overlay)

    def _decode(self, data: bytes, path: str) -> np.ndarray:
        from .transforms import load_image

        try:
            return load_image(io.BytesIO(data), self.segmenter.channels)
        except UnetrtError as exc:
            raise UnetrtError(f"cannot read image {path}: {exc.__cause__ or exc.what}", exc.expected,
                              exc.fix) from exc

    def _segment(self, images: list[np.ndarray]) -> list[Any]:
        """Masks of decoded images; one that the model refuses (too small) is an error of its own."""
        try:
            return list(self.segmenter(images))
        except InputError as exc:
            if len(images) == 1:
                return [exc]
            return [p for im in images for p in self._segment([im])]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import json

        from .segment import ImageResult

        t0 = time.perf_counter()
        paths = [str(p) for p in batch["path"]]
        results = [ImageResult(i, p, self.job.targets.get(_key(p)) if self.job.save else None)
                   for i, p in enumerate(paths)]
        decoded: list[tuple[ImageResult, np.ndarray]] = []
        for res, data in zip(results, batch["bytes"]):
            try:
                decoded.append((res, self._decode(bytes(data), res.input)))
            except UnetrtError as exc:
                res.status, res.error, res.output = "error", str(exc), None
        t1 = time.perf_counter()
        preds = self._segment([im for _, im in decoded])
        t2 = time.perf_counter()
        for (res, image), pred in zip(decoded, preds):
            try:
                if isinstance(pred, UnetrtError):
                    raise pred
                if self.job.save:
                    if res.output is None:
                        raise UnetrtError(f"{res.input} has no output path", "every input mapped to an output",
                                          "run the job through unetrt.runtime.ray_predict.predict_with_ray")
                    self.writer(pred.mask, res.output, image)
                res.size, res.mode = tuple(image.shape[:2]), pred.mode
                res.class_pixels = np.bincount(pred.mask.ravel(),
                                               minlength=max(2, int(pred.logits_shape[1]))).tolist()
            except UnetrtError as exc:
                res.status, res.error, res.output = "error", str(exc), None
            except OSError as exc:
                res.status, res.error, res.output = "error", f"cannot write {res.output}: {exc.strerror or exc}", None
        per = {"read": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3}
        n = max(1, len(decoded))
        for res in results:
            res.ms = (time.perf_counter() - t0) * 1e3 / len(results)
            res.timings_ms = {k: v / n for k, v in per.items()}
        # Ray batches are columnar; the rows go back as JSON strings so the nested fields keep their types.
        return {"row": np.array([json.dumps(r.row()) for r in results], dtype=object)}


@dataclass(frozen=True)
class RayOptions:
    """How the job is laid out on the cluster."""

    address: str | None = None     # None: a local Ray; "auto": the running cluster; or ray://HOST:PORT
    concurrency: int = 1           # actors, each holding one runner
    batch_size: int = 4            # images per map_batches call
    num_gpus: float = 0            # per actor (GPU clusters: 1, or a fraction to share a GPU)
    num_cpus: float = 1            # per actor
    local_cpus: int | None = None  # CPUs of a local Ray started here (tests: 2)
    read_tasks: int | None = None  # read tasks at once (default: 2 per actor)


def _init(ray, opts: RayOptions):
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if opts.address is None:
        if opts.local_cpus is not None:
            kwargs["num_cpus"] = opts.local_cpus
    else:
        kwargs["address"] = opts.address
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise UnetrtError(f"cannot reach the Ray cluster at {opts.address}: {exc}", "a running Ray cluster",
                          "start one (ray start --head) or pass --ray without an address for a local one") from exc
    return True


def predict_with_ray(inputs: list[str | os.PathLike], targets: list[str | os.PathLike], job: ImageJob,
                     opts: RayOptions = RayOptions(),
                     on_row: Callable[[dict[str, Any]], None] | None = None,
                     segmenter: type[SegmentActor] = SegmentActor) -> list[dict[str, Any]]:
    """Segment ``inputs`` into ``targets`` on Ray; returns one index row per input, in input order.

    The masks are written by the workers; a file that cannot be read or segmented gets its ``error`` in
    its row and the rest continue. ``on_row`` sees each row as it arrives (progress); ``segmenter`` may be
    a subclass of :class:`SegmentActor` (extra per-image work on the workers).
    """
    if len(inputs) != len(targets):
        raise InputError(f"{len(targets)} targets for {len(inputs)} inputs", "one target per input", "fix targets")
    ray = require_ray()
    import json

    job = ImageJob(**{**asdict(job), "targets": {_key(i): os.fspath(t) for i, t in zip(inputs, targets)},
                      "threads": max(1, int(opts.num_cpus))})
    started = _init(ray, opts)
    try:
        # Reading is I/O: zero-CPU read tasks never wait behind the actors that hold every CPU. Zero-CPU
        # tasks are not limited by the CPU count, so their number is: unbounded, Ray starts a worker
        # process per read block (measured: 30+ processes for 256 images on 2 CPUs, load average 30).
        ds = ray.data.read_binary_files([_key(i) for i in inputs], include_paths=True, num_cpus=0,
                                        concurrency=opts.read_tasks or 2 * opts.concurrency)
        with warnings.catch_warnings():
            # Bounded retries (a poison image must not loop forever) have no named parameter in Ray 2.60:
            # they go as remote args, which Ray flags as deprecated (their defaults, -1, retry forever).
            warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
            ds = ds.map_batches(segmenter, fn_constructor_kwargs={"job": job}, batch_size=opts.batch_size,
                                compute=ray.data.ActorPoolStrategy(size=opts.concurrency), num_gpus=opts.num_gpus,
                                num_cpus=opts.num_cpus, max_restarts=-1, max_task_retries=MAX_RETRIES)
        rows: dict[str, dict[str, Any]] = {}
        for item in ds.iter_rows():
            row = json.loads(item["row"])
            rows[_key(row["input"])] = row
            if on_row is not None:
                on_row(row)
    finally:
        if started:
            ray.shutdown()
    order = [_key(i) for i in inputs]
    missing = [k for k in order if k not in rows]
    if missing:
        raise UnetrtError(f"the Ray job returned no result for {missing[0]}" +
                          (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""),
                          "one result per input", "rerun with --skip-existing to finish the rest")
    return [rows[k] for k in order]
