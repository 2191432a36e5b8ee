"""The backend registry: every way unetrt can run a model, registered once.

A :class:`Backend` names its runner class (imported only when a runner is opened), the artifact it
runs (the eager module, an ONNX file or a TensorRT engine of one precision), the devices it runs on,
its options, and an availability check that returns the reason it cannot run here (the type is
:mod:`unetrt.runtime.backend_spec`, the built-in ones :mod:`unetrt.runtime.backend_table`). :func:`load`,
``unet-predict --backend``, ``unet-bench --backends`` and the help texts all read this registry;
adding a backend is one module and one :func:`register` call.

Example::

    from unetrt.runtime.backends import Backend, register
    register(Backend("my-npu", family="npu", runner="my_pkg.runner:NpuRunner", kind="onnx",
                     precision="fp32", devices=("cpu",), description="ONNX on my NPU"))
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import RegistrationError, UnetrtError
from .backend_spec import KINDS, Backend, RunOptions

__all__ = ["Backend", "RunOptions", "register", "unregister", "get", "backends", "names", "resolve", "FAMILIES",
           "describe_all", "KINDS"]

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


_LOADED = False


def _ensure_builtin() -> None:
    """Register the built-in backends (:data:`unetrt.runtime.backend_table.BUILTIN`) on first use."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from .backend_table import BUILTIN

        for backend in BUILTIN:
            register(backend)
