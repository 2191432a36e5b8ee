"""``Backend``: one way unetrt can run a model, as a value (the registry is :mod:`unetrt.runtime.backends`).

A backend names its runner class (imported only when a runner is opened), the artifact it runs
(:attr:`Backend.artifact`, an :class:`~unetrt.artifacts.refs.ArtifactRef`), the devices it runs on
(:meth:`Backend.fits`), its options, and an availability check that returns the reason it cannot run here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..artifacts.refs import KINDS, ArtifactRef
from ..errors import RegistrationError

__all__ = ["Backend", "RunOptions", "KINDS"]


@dataclass(frozen=True)
class RunOptions:
    """Run settings a caller (the bench, predict, load) passes to every backend alike.

    Each backend's ``adapt`` turns the ones it understands into runner keyword arguments.

    Attributes:
        threads: CPU threads (ONNX Runtime intra-op; PyTorch eager uses the process setting).
        ort_level: ONNX Runtime graph optimisation level.
        cache_dir: Engine-cache directory for backends that build engines lazily (ORT's TensorRT EP).
    """

    threads: int | None = None
    ort_level: str = "all"
    cache_dir: str | None = None


@dataclass(frozen=True)
class Backend:
    """One registered backend.

    Attributes:
        name: Unique name (``ort-fp16``); shown in help texts and reports.
        family: ``torch``, ``ort``, ``trt`` or a new family; ``load(backend=family)`` picks among them.
        runner: The runner class, or ``"module:Class"`` imported when a runner is opened.
        kind: What it runs: ``"module"`` (eager ``nn.Module`` / checkpoint), ``"onnx"`` or ``"engine"``.
        precision: ``fp32``, ``fp16`` or ``int8``: which artifact, and which parity bars apply.
        devices: Where it runs, preferred first (``("cuda", "cpu")`` = CUDA when present).
        description: One line for help texts and reports.
        aliases: Other accepted names.
        options: Fixed runner keyword arguments (e.g. ``providers="cuda"``).
        available: ``() -> reason | None``: why it cannot run on this machine (``None`` = it can).
        adapt: ``(RunOptions) -> dict``: runner keyword arguments from the shared run settings.
        auto: Whether ``load(backend="auto")`` / a family may choose it (explicit names always work).
        notes: Caveats a reader of its benchmark rows should know.
        parity: The parity bars when they differ from ``precision``'s: ``"tf32"`` for FP32 graphs that
            TensorRT runs with TF32 (ONNX Runtime's TensorRT EP has no TF32 switch); ``""`` = the precision's.
        form: Which file of that kind and precision it runs when there are several (``"cpu"``:
            ``model_int8_cpu.onnx``); ``""`` = the standard one. :attr:`artifact` is the whole reference.
    """

    name: str
    family: str
    runner: type | str
    kind: str
    precision: str
    devices: tuple[str, ...]
    description: str
    aliases: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    available: Callable[[], str | None] | None = None
    adapt: Callable[[RunOptions], dict[str, Any]] | None = None
    auto: bool = True
    notes: tuple[str, ...] = ()
    form: str = ""
    parity: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RegistrationError(f"backend {self.name!r} has kind {self.kind!r}", f"one of {', '.join(KINDS)}",
                              "fix the registration")
        if not self.devices or any(d not in ("cpu", "cuda") for d in self.devices):
            raise RegistrationError(f"backend {self.name!r} has devices {self.devices!r}", "a tuple of 'cpu'/'cuda'",
                              "fix the registration")
        self.artifact  # noqa: B018  (a kind, precision and form that name a file)

    @property
    def artifact(self) -> ArtifactRef:
        """The artifact of an export this backend runs."""
        return ArtifactRef(self.kind, self.precision, self.form)

    @property
    def gpu_only(self) -> bool:
        """Runs on CUDA only."""
        return self.devices == ("cuda",)

    def runner_class(self) -> type:
        """The runner class (imported now if registered by name)."""
        if isinstance(self.runner, str):
            module, _, attr = self.runner.partition(":")
            return getattr(importlib.import_module(module), attr)
        return self.runner

    def reason_unavailable(self, *, cuda: bool | None = None) -> str | None:
        """Why this backend cannot run here (``None`` when it can).

        Args:
            cuda: Whether a CUDA GPU is visible (probed when ``None``).
        """
        reason = self.available() if self.available else None
        if reason is None and self.gpu_only and not (_cuda() if cuda is None else cuda):
            reason = "needs a CUDA GPU (none visible)"
        return reason

    def fits(self, device: str, *, cuda: bool | None = None, spelled: str = "device={!r}") -> str | None:
        """Why this backend cannot run under the ``device`` policy here (``None`` when it can).

        Args:
            device: ``"auto"``, ``"cpu"`` (excludes GPU backends) or ``"cuda"`` (excludes CPU-only ones).
            cuda: Whether a CUDA GPU is visible (probed when ``None``).
            spelled: How the reason spells the policy (``"--device {}"`` for a command's option).
        """
        if device == "cpu" and "cpu" not in self.devices:
            return f"{spelled.format(device)} excludes GPU backends"
        if device == "cuda" and "cuda" not in self.devices:
            return f"{spelled.format(device)} excludes CPU-only backends"
        return self.reason_unavailable(cuda=cuda)

    def device_for(self, device: str, cuda: bool) -> str:
        """Where this backend runs under the ``device`` policy (multi-device backends: CUDA when allowed)."""
        if self.gpu_only:
            return "cuda"
        return "cuda" if "cuda" in self.devices and cuda and device != "cpu" else "cpu"

    def open(self, target: Any, *, manifest: Any = None, device: str | None = None,
             run: RunOptions | None = None, **kw: Any) -> Any:
        """An inactive runner for ``target`` (module, checkpoint, ONNX or engine path).

        Args:
            target: What :attr:`kind` says.
            manifest: The export's :class:`~unetrt.artifacts.manifest.Manifest`, if any.
            device: For eager backends, the device to use (default: the first usable one).
            run: Shared run settings, mapped by :attr:`adapt`.
            **kw: Extra runner keyword arguments (override the registered options).
        """
        options = dict(self.options)
        if self.adapt is not None:
            options.update(self.adapt(run or RunOptions()))
        if self.kind == "module":
            options["device"] = device or next((d for d in self.devices if d != "cuda" or _cuda()), "cpu")
        options.update(kw)
        return self.runner_class()(target, manifest=manifest, name=self.name, **options)


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
