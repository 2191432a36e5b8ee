"""What a benchmark grid runs: the model, sizes, batches, backends, timing, threads and inputs."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnetrtError
from ..artifacts.source import ModelSource
from .backends import parse_backends
from .inputs import parse_batches, parse_sizes
from .machine import default_threads
from .timing import TimingPlan

__all__ = ["BenchConfig", "DEVICES", "ORT_LEVELS"]

DEVICES = ("auto", "cpu", "cuda")
ORT_LEVELS = ("disable", "basic", "extended", "all")


@dataclass
class BenchConfig:
    """What to benchmark and how.

    Attributes:
        arch: Zoo variant (or ``factory``: ``pkg.module:factory``).
        model_kwargs: Model keyword arguments (``{"width": 64}``).
        checkpoint: Weights to load (random initialisation otherwise).
        sizes: ``"256,512"``, ints or ``(H, W)`` pairs.
        batches: ``"1,4"`` or ints.
        backends: Names from the backend registry (:mod:`unetrt.runtime.backends`).
        timing: Warm-up and count/duration (:class:`TimingPlan`).
        threads: CPU threads for every CPU backend (PyTorch intra-op and ONNX Runtime
            ``intra_op_num_threads``); ``None``: every core this process may use.
        device: ``"auto"``, ``"cpu"`` (GPU backends skipped) or ``"cuda"`` (CPU-only ones skipped).
        transfers: Time host->device input and device->host output copies on CUDA backends
            (``False`` = trtexec's ``--noDataTransfers``; ONNX Runtime rows always copy).
        images: Folder of images to use instead of seeded random inputs.
        workdir: Artifact cache directory.
        seed: Seed of the random inputs.
        ort_level: ONNX Runtime graph optimisation level.
        channels_last: Run eager with a channels-last model.
    """

    arch: str | None = None
    factory: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    sizes: Any = "256"
    batches: Any = "1"
    backends: Any = "eager,ort"
    timing: TimingPlan = field(default_factory=TimingPlan)
    threads: int | None = None
    device: str = "auto"
    transfers: bool = True
    images: str | None = None
    workdir: str = ".unetrt-bench"
    seed: int = 0
    ort_level: str = "all"
    channels_last: bool = False

    def __post_init__(self):
        if bool(self.arch) == bool(self.factory):
            raise UnetrtError("exactly one of arch and factory must be given", "--arch NAME or --model pkg.mod:fn",
                              "run `unetrt models` for the zoo")
        self.sizes = parse_sizes(self.sizes)
        self.batches = parse_batches(self.batches)
        self.backends = parse_backends(self.backends)
        if self.threads is not None and (isinstance(self.threads, bool) or int(self.threads) < 1):
            raise UnetrtError(f"--threads {self.threads}", "a positive number of threads",
                              f"e.g. --threads {default_threads()} (all usable cores, the default)")
        if self.device not in DEVICES:
            raise UnetrtError(f"device {self.device!r}", f"one of {', '.join(DEVICES)}", "fix --device")
        if self.ort_level not in ORT_LEVELS:
            raise UnetrtError(f"ort_level {self.ort_level!r}", f"one of {', '.join(ORT_LEVELS)}", "fix --ort-opt-level")
        _check_workdir(self.workdir)
        if self.images is not None and not os.path.isdir(os.path.expanduser(self.images)):
            raise UnetrtError(f"--images {self.images} is not a directory", "a folder of images", "check the path")

    @property
    def source(self) -> ModelSource:
        return ModelSource(arch=self.arch, factory=self.factory, kwargs=dict(self.model_kwargs),
                           checkpoint=self.checkpoint)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "timing"}
        d.update(sizes=[list(s) for s in self.sizes], timing=self.timing.to_dict(),
                 threads=self.threads or default_threads())
        return d


def _check_workdir(workdir: str) -> None:
    path = os.path.abspath(os.path.expanduser(workdir))
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise UnetrtError(f"--workdir {workdir} cannot be used ({existing} is not a writable directory)",
                          "a writable directory for the exported artifacts", "choose another --workdir")
