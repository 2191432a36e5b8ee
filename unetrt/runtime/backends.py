"""The backend registry: every way unetrt can run a model, registered once.

A :class:`Backend` names its runner class (imported only when a runner is opened), the artifact it
runs (the eager module, an ONNX file or a TensorRT engine of one precision), the devices it runs on,
its options, and an availability check that returns the reason it cannot run here. :func:`load`,
``unet-predict --backend``, ``unet-bench --backends`` and the help texts all read this registry;
adding a backend is one module and one :func:`register` call.

Example::

    from unetrt.runtime.backends import Backend, register
    register(Backend("my-npu", family="npu", runner="my_pkg.runner:NpuRunner", kind="onnx",
                     precision="fp32", devices=("cpu",), description="ONNX on my NPU"))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RegistrationError, UnetrtError

__all__ = ["Backend", "RunOptions", "register", "unregister", "get", "backends", "names", "resolve", "FAMILIES",
           "describe_all"]

#: The three artifact kinds a backend can run.
KINDS = ("module", "onnx", "engine")


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
        artifact: Which ONNX of the export it runs when that is not simply its precision's
            (``"int8-cpu"``: ``model_int8_cpu.onnx``); ``None`` = by precision.
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
    artifact: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RegistrationError(f"backend {self.name!r} has kind {self.kind!r}", f"one of {', '.join(KINDS)}",
                              "fix the registration")
        if not self.devices or any(d not in ("cpu", "cuda") for d in self.devices):
            raise RegistrationError(f"backend {self.name!r} has devices {self.devices!r}", "a tuple of 'cpu'/'cuda'",
                              "fix the registration")

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


_REGISTRY: dict[str, Backend] = {}
_ALIASES: dict[str, str] = {}


def register(backend: Backend, *, replace: bool = False) -> Backend:
    """Add a backend (its name and aliases must be new unless ``replace``); returns it.

    Raises:
        UnetrtError: The name or an alias is taken, or clashes with a family name.
    """
    _ensure_builtin()
    if replace:
        unregister(backend.name)
    taken = [n for n in (backend.name, *backend.aliases) if n in _REGISTRY or n in _ALIASES]
    if taken:
        raise RegistrationError(f"backend name {taken[0]!r} is already registered", "a new name",
                          "choose another name or pass replace=True")
    _REGISTRY[backend.name] = backend
    for alias in backend.aliases:
        _ALIASES[alias] = backend.name
    return backend


def unregister(name: str) -> None:
    """Remove a backend and its aliases (tests, plugins)."""
    backend = _REGISTRY.pop(_canonical(name), None)
    if backend:
        for alias in backend.aliases:
            _ALIASES.pop(alias, None)


def _canonical(name: str) -> str:
    return _ALIASES.get(name, name)


def backends() -> list[Backend]:
    """Every registered backend, in registration (preference) order."""
    _ensure_builtin()
    return list(_REGISTRY.values())


def names() -> list[str]:
    """Every registered backend name."""
    return [b.name for b in backends()]


FAMILIES = ("torch", "ort", "trt")


def get(name: str) -> Backend:
    """The backend called ``name`` (or an alias).

    Raises:
        UnetrtError: Unknown name (the message lists the registered ones).
    """
    _ensure_builtin()
    backend = _REGISTRY.get(_canonical(name))
    if backend is None:
        raise UnetrtError(f"unknown backend {name!r}", f"one of {', '.join(names())}",
                          "see `unet-bench --help` for what each one runs")
    return backend


def resolve(name: str) -> list[Backend]:
    """Candidates for a ``load(backend=...)`` value: ``auto`` (every auto backend), a family (its auto
    members), or one backend by name or alias.

    Raises:
        UnetrtError: Neither a family nor a registered name.
    """
    everything = backends()
    if name == "auto":
        return [b for b in everything if b.auto]
    families = {b.family for b in everything}
    if name in families:
        members = [b for b in everything if b.family == name]
        return [b for b in members if b.auto] or members
    return [get(name)]


def parse_names(value: str | Iterable[str]) -> list[Backend]:
    """``"eager,ort"`` or a list -> backends in the given order, duplicates dropped.

    Raises:
        UnetrtError: An unknown name (the message lists the registered ones) or an empty list.
    """
    items = [n.strip() for n in (value.split(",") if isinstance(value, str) else value)]
    items = [n for n in items if n]
    _ensure_builtin()
    unknown = [n for n in items if _canonical(n) not in _REGISTRY]
    if unknown or not items:
        what = f"unknown backend(s) {', '.join(repr(n) for n in unknown)}" if unknown else "no backend given"
        raise UnetrtError(what, f"comma-separated names among {', '.join(names())}",
                          "e.g. --backends eager,ort,ort-fp16")
    return list({b.name: b for b in (get(n) for n in items)}.values())


def describe_all() -> str:
    """``name: description`` for every backend, for help texts."""
    return "; ".join(f"{b.name}: {b.description}" for b in backends())


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


_LOADED = False


def _ensure_builtin() -> None:
    """Register the built-in backends on first use (they live in :mod:`unetrt.runtime.builtin`)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        importlib.import_module("unetrt.runtime.builtin")
