"""``unet-predict --ray``: the same per-image steps as a local run, as a Ray Data job.

The paths are read with Ray's own reader (:func:`ray.data.read_binary_files`, so a cluster's workers read
them where they are), then :meth:`ray.data.Dataset.map_batches` runs :class:`Segmenter`, a callable class
that holds one active runner per actor. Each actor decodes its images, segments them and writes the masks
itself (atomically, the same bytes as a local run), and returns one index row per image. Actors are
restarted and their batches retried when a worker dies, so a killed worker costs time, not outputs.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UnetrtError

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


def _write_png(array: np.ndarray, path: Path) -> None:
    from ..fileio import atomic_path
    from .transforms import to_pil_image

    with atomic_path(path) as tmp:
        to_pil_image(array).save(tmp, format="PNG")


class Segmenter:
    """Ray Data callable class: one runner per actor, ``{"bytes", "path"}`` batches in, index rows out."""

    def __init__(self, job: ImageJob):
        from . import load

        self.job = job
        runner = load(job.model, **job.load_kwargs)
        if getattr(runner, "threads", 0) is None:
            # ONNX Runtime would size its pool to the whole node; an actor gets the CPUs Ray reserved for it.
            runner.threads = job.threads
        self.runner = runner.activate()
        manifest = self.runner.manifest
        self.mask_values = job.mask_values if job.mask_values is not None else \
            (manifest.mask_values if manifest is not None else None)
        name, c = next(iter(self.runner.input_constraints.items()))
        self.channels = c.shape[1] if len(c.shape) == 4 else None

    def _one(self, data: bytes, path: str) -> dict[str, Any]:
        from .predict import overlay, predict
        from .transforms import load_image, mask_to_image

        t0 = time.perf_counter()
        target = self.job.targets.get(_key(path))
        row: dict[str, Any] = {"input": path, "output": target if self.job.save else None, "size": None,
                               "mode": None, "class_pixels": None, "ms": None, "error": None}
        try:
            try:
                img = load_image(io.BytesIO(data), self.channels)
            except UnetrtError as exc:
                raise UnetrtError(f"cannot read image {path}: {exc.__cause__ or exc.what}", exc.expected,
                                  exc.fix) from exc
            pred = predict(self.runner, img, scale=self.job.scale, mask_threshold=self.job.mask_threshold,
                           tile=self.job.tile)
            if self.job.save:
                if target is None:
                    raise UnetrtError(f"{path} has no output path", "every input mapped to an output",
                                      "run the job through unetrt.runtime.ray_predict.predict_with_ray")
                out = Path(target)
                _write_png(mask_to_image(pred.mask, self.mask_values), out)
                if self.job.overlay:
                    _write_png(overlay(img, pred.mask), out.with_name(out.stem.removesuffix("_OUT") + "_OVERLAY.png"))
            row.update(size=list(img.shape[:2]), mode=pred.mode,
                       class_pixels=np.bincount(pred.mask.ravel(), minlength=2).tolist())
        except UnetrtError as exc:
            row.update(error=exc.what, output=None)
        except OSError as exc:
            row.update(error=f"cannot read or write: {exc.strerror or exc}", output=None)
        row["ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        return row

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self._one(bytes(b), str(p)) for b, p in zip(batch["bytes"], batch["path"])]
        import json

        # Ray batches are columnar; the rows go back as JSON strings so the nested fields keep their types.
        return {"row": np.array([json.dumps(r) for r in rows], dtype=object)}


@dataclass(frozen=True)
class RayOptions:
    """How the job is laid out on the cluster."""

    address: str | None = None     # None: a local Ray; "auto": the running cluster; or ray://HOST:PORT
    concurrency: int = 1           # actors, each holding one runner
    batch_size: int = 4            # images per map_batches call
    num_gpus: float = 0            # per actor (GPU clusters: 1, or a fraction to share a GPU)
    num_cpus: float = 1            # per actor
    local_cpus: int | None = None  # CPUs of a local Ray started here (tests: 2)


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
                     segmenter: type[Segmenter] = Segmenter) -> list[dict[str, Any]]:
    """Segment ``inputs`` into ``targets`` on Ray; returns one index row per input, in input order.

    The masks are written by the workers; a file that cannot be read or segmented gets its ``error`` in
    its row and the rest continue. ``on_row`` sees each row as it arrives (progress); ``segmenter`` may be
    a subclass of :class:`Segmenter` (extra per-image work on the workers).
    """
    if len(inputs) != len(targets):
        raise ValueError("one target per input")
    ray = require_ray()
    import json

    job = ImageJob(**{**asdict(job), "targets": {_key(i): os.fspath(t) for i, t in zip(inputs, targets)},
                      "threads": max(1, int(opts.num_cpus))})
    started = _init(ray, opts)
    try:
        # Reading is I/O: zero-CPU read tasks never wait behind the actors that hold every CPU.
        ds = ray.data.read_binary_files([_key(i) for i in inputs], include_paths=True, num_cpus=0)
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
