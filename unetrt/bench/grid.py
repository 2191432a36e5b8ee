"""The benchmark grid: every backend at every (size, batch), timed and compared with eager FP32.

Order of work: validate the configuration and the sizes (model spec, then the export manifest),
build or reuse the artifacts, make the inputs, compute the eager FP32 reference on CPU once per
shape, then run one backend at a time (its runner stays active over all shapes, and only one
backend holds threads at any moment).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import UnetrtError
from .artifacts import Artifact, ArtifactCache
from .backends import BACKENDS, Backend, backend_notes, make_runner, unavailable_reason
from .config import BenchConfig
from .inputs import check_sizes, image_batch, load_images, random_batch
from .machine import PeakMemory, cuda_available, default_threads, machine_info
from .parity import parity_row
from .results import BenchResult, add_speedups, new_row, set_timing
from .timing import measure

__all__ = ["BenchConfig", "run_grid", "Progress"]

#: ``progress(message, rows done, rows in the grid)``.
Progress = Callable[[str, int, int], None]
REFERENCE = "eager FP32 on CPU (torch.inference_mode), same inputs"


def _report(progress: Progress | None, message: str, done: int, total: int) -> None:
    if progress is not None:
        progress(message, done, total)


def _build_model(config: BenchConfig):
    """The model under test (seeded random init unless a checkpoint is given), its spec and channels."""
    import torch

    from ..models import build_model, zoo_spec
    from ..models.geometry import input_channels

    source = config.source
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model, _meta = build_model(source)
    section = {"arch": source.arch, "factory": source.factory,
               "kwargs": {k: v for k, v in getattr(model, "config", {}).items() if k not in ("arch", "factory")},
               "params": sum(p.numel() for p in model.parameters()),
               "checkpoint": {"path": source.checkpoint} if source.checkpoint else None}
    return model, section, zoo_spec(source), input_channels(model)


def _check_manifests(config: BenchConfig, artifacts: dict[Any, Any], name: str) -> None:
    for art in artifacts.values():
        if isinstance(art, Artifact):
            section = art.manifest.input
            check_sizes(config.sizes, name=name, min_size=int(section.min_size or 1),
                        alignment=int(section.alignment or 1), source=f"export manifest {art.path.parent}")


def _inputs(config: BenchConfig, shapes: Sequence[tuple[int, ...]]) -> dict[tuple[int, ...], np.ndarray]:
    if config.images:
        images = load_images(config.images)
        return {s: image_batch(images, s) for s in shapes}
    return {s: random_batch(s, config.seed + i) for i, s in enumerate(shapes)}


def _references(model, feeds: dict[tuple[int, ...], np.ndarray]) -> dict[tuple[int, ...], np.ndarray]:
    from ..runtime import TorchRunner

    with TorchRunner(model, device="cpu", precision="fp32", name="reference") as ref:
        out = next(iter(ref.output_metadata))
        return {s: np.asarray(ref.infer({ref.input_name: x})[out]) for s, x in feeds.items()}


def _timed_call(runner, backend: Backend, device: str, x: np.ndarray, transfers: bool):
    """``(step, sync, transfers_included)`` for the timing loop."""
    name = next(iter(runner.input_constraints))
    if device != "cuda":
        feed = {name: x}
        return (lambda: runner.infer(feed)), None, None
    import torch

    if transfers or backend.kind == "onnx":  # OrtRunner feeds host arrays (no I/O binding)
        feed = {name: x}
        return (lambda: runner.infer(feed, to_host=True)), torch.cuda.synchronize, True
    feed = {name: torch.from_numpy(x).to("cuda")}
    return (lambda: runner.infer(feed, to_host=False)), torch.cuda.synchronize, False


def _run_row(runner, backend: Backend, row: dict, x: np.ndarray, ref: np.ndarray, config: BenchConfig) -> None:
    """Parity (one inference, which also counts as the first warm-up iteration), then timing."""
    name, constraint = next(iter(runner.input_constraints.items()))
    x = x.astype(constraint.dtype) if constraint.dtype != "float32" else x
    output = next(iter(runner.infer({name: x}).values()))
    row.update(parity_row(ref, output, backend.parity or backend.precision))
    plan = dataclasses.replace(config.timing, warmup=max(config.timing.warmup - 1, getattr(runner, "min_warmup", 0)))
    if row["device"] == "cuda" and not config.transfers and hasattr(runner, "device_step"):
        _run_device_row(runner, row, x, plan)
        return
    step, sync, row["transfers_included"] = _timed_call(runner, backend, row["device"], x, config.transfers)
    memory = PeakMemory(row["device"])
    memory.start()
    stats = measure(step, plan, batch=row["batch"], sync=sync)
    row["peak_memory_mb"], row["memory_kind"] = memory.stop()
    set_timing(row, stats)
    row["notes"] = list(dict.fromkeys([*runner.notes, *backend_notes(backend, row["device"])]))


def _run_device_row(runner, row: dict, x: np.ndarray, plan) -> None:
    """--no-transfers on a GPU backend: buffers bound once, GPU compute time from CUDA events."""
    from .timing import measure_device

    name = next(iter(runner.input_constraints))
    step = runner.device_step({name: x})
    memory = PeakMemory(row["device"])
    memory.start()
    timing = measure_device(step, plan, batch=row["batch"])
    row["peak_memory_mb"], row["memory_kind"] = memory.stop()
    set_timing(row, timing.gpu)
    row["transfers_included"] = False
    row["end_to_end_ms"] = timing.end_to_end.latency_ms()
    row["timing"] = "cuda-events"
    notes = [f"latency = GPU compute time (CUDA events on the runner's stream, {timing.warmup} warm-up runs); "
             f"end_to_end_ms = enqueue until done, buffers bound once"]
    row["notes"] = list(dict.fromkeys([*runner.notes, *notes, *([step.note] if step.note else [])]))


def _fail(rows: list[dict], status: str) -> None:
    for row in rows:
        row["status"] = status


def _run_backend(backend: Backend, rows: list[dict], *, model, artifact, reason: str | None, feeds, refs,
                 config: BenchConfig, threads: int, tick: Callable[[str], None]) -> None:
    if reason is not None or isinstance(artifact, Exception):
        _fail(rows, f"skipped: {reason}" if reason else f"failed: artifact: {artifact}")
        for row in rows:
            tick(f"{backend.name} {row['status']}")
        return
    try:
        if backend.kind == "module" and config.channels_last:
            import torch

            model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        runner = make_runner(backend, model=model, path=artifact.path if artifact else None,
                             manifest=artifact.manifest if artifact else None, device=rows[0]["device"],
                             threads=threads, ort_level=config.ort_level,
                             cache_dir=artifact.path.parent / "ort-trt-cache" if artifact else None)
        runner.activate()
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes a row, the grid goes on
        _fail(rows, f"failed: {_why(exc)}")
        for row in rows:
            tick(f"{backend.name} {row['status']}")
        return
    try:
        for row in rows:
            shape = tuple(row["shape"])
            try:
                _run_row(runner, backend, row, feeds[shape], refs[shape], config)
            except Exception as exc:  # noqa: BLE001 - e.g. out of memory at the largest size
                row["status"] = f"failed: {_why(exc)}"
            tick(f"{backend.name} {'x'.join(map(str, shape))}")
    finally:
        runner.deactivate()


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return text if isinstance(exc, UnetrtError) else f"{type(exc).__name__}: {text}"


def run_grid(config: BenchConfig, progress: Progress | None = None) -> BenchResult:
    """Benchmark every backend of ``config`` at every size and batch.

    Args:
        config: The grid.
        progress: Called with a status line and (rows done, rows total).

    Returns:
        The machine, the configuration and one row per (backend, shape); unavailable backends
        are ``"skipped: <reason>"`` rows, backends that broke ``"failed: <reason>"`` rows.

    Raises:
        UnetrtError: A size the model cannot take, an unreadable image folder, a model that
            cannot be built.
    """
    import torch

    threads = config.threads or default_threads()
    cuda = cuda_available()
    if config.device == "cuda" and not cuda:
        raise UnetrtError("--device cuda but PyTorch sees no CUDA GPU", "an NVIDIA GPU and a CUDA build of torch",
                          "use --device auto or cpu")
    model, section, spec, in_ch = _build_model(config)
    name = config.source.label
    check_sizes(config.sizes, name=name, min_size=spec.min_size if spec else 1,
                alignment=spec.alignment if spec else 1, model=model, in_channels=in_ch)
    shapes = [(n, in_ch, *size) for size in config.sizes for n in config.batches]
    backends = [BACKENDS[b] for b in config.backends]
    reasons = {b.name: unavailable_reason(b, cuda=cuda, device=config.device) for b in backends}
    total, done = len(backends) * len(shapes), 0
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        wanted = {b.artifact for b in backends if b.kind != "module" and reasons[b.name] is None}
        cache = ArtifactCache(config.workdir, config.source, shapes, lambda m: _report(progress, m, 0, total))
        weights = cache.use_weights_of(model)
        artifacts = cache.prepare(wanted)
        _check_manifests(config, artifacts, name)
        feeds = _inputs(config, shapes)
        _report(progress, "eager FP32 reference outputs", 0, total)
        refs = _references(model, feeds)
        rows: list[dict] = []

        def tick(message: str) -> None:
            nonlocal done
            done += 1
            _report(progress, message, done, total)

        for backend in backends:
            device = backend.device_for(config.device, cuda)
            group = [new_row(backend, s, device=device, threads=threads if device == "cpu" else None)
                     for s in shapes]
            _run_backend(backend, group, model=model, artifact=artifacts.get(backend.artifact),
                         reason=reasons[backend.name], feeds=feeds, refs=refs, config=config, threads=threads,
                         tick=tick)
            rows += group
    finally:
        torch.set_num_threads(previous)
    add_speedups(rows)
    described = config.to_dict()
    described.update(threads=threads, reference=REFERENCE,
                     model=_section_summary(section, cache.root, weights),
                     artifacts={k.key: ({"path": str(a.path), "reused": a.reused} if isinstance(a, Artifact)
                                    else {"error": str(a)}) for k, a in artifacts.items()},
                     transfers_note="host<->device copies exist only on CUDA rows; CPU rows: n/a")
    return BenchResult(machine_info(), described, rows)


def _section_summary(section: dict[str, Any], root, weights) -> dict[str, Any]:
    checkpoint = section.get("checkpoint") or (
        {"path": str(weights), "note": "random initialisation (seeded), pinned in the workdir"} if weights else None)
    return {"arch": section.get("arch"), "factory": section.get("factory"), "kwargs": section.get("kwargs"),
            "params": section.get("params"), "checkpoint": checkpoint, "workdir": str(root)}
