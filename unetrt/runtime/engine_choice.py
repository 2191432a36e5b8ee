"""Whether a TensorRT engine listed in a manifest can run on this machine.

The rule is the typed entry's (:meth:`unetrt.artifacts.engine_entry.EngineEntry.unusable_reason`: file
present, flavour installed, GPU among its targets, loadable version); this module adds the probes of
the machine (:func:`probe_gpu_cc`, :func:`installed_flavours`) and :func:`engine_unusable_reason`, the
rule applied with given values (tests pass any GPU and any installed set).
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts.engine_entry import EngineEntry, sm_name
from ..artifacts.trt import FLAVOURS, probe_gpu_cc

__all__ = ["engine_unusable_reason", "unusable_here", "probe_gpu_cc", "installed_flavours", "sm_name"]


def engine_unusable_reason(entry: EngineEntry, directory: Path, *, gpu_cc: tuple[int, int] | None,
                           installed: dict[str, str]) -> str | None:
    """Why the engine ``entry`` cannot run with GPU ``gpu_cc`` and the ``installed`` flavours (``None``: it can)."""
    return entry.unusable_reason(directory, gpu_cc=gpu_cc, installed=installed)


def unusable_here(entry: EngineEntry, directory: Path) -> str | None:
    """Why the engine ``entry`` cannot run on this machine (``None`` when it can)."""
    return engine_unusable_reason(entry, directory, gpu_cc=probe_gpu_cc(), installed=installed_flavours())


def installed_flavours() -> dict[str, str]:
    """``{flavour: version}`` of the TensorRT flavours that import here."""
    from ..artifacts.trt import import_tensorrt
    from ..errors import UnetrtError

    out = {}
    for flavour in FLAVOURS:
        try:
            out[flavour] = import_tensorrt(flavour)[2]
        except UnetrtError:
            continue
    return out
