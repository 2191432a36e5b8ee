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

__all__ = ["engine_unusable_reason", "unusable_here", "probe_gpu_cc", "installed_flavours", "sm_name",
           "rtx_targets", "flavour_for_gpu", "flavour_here"]


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


def rtx_targets(module=None) -> list[str]:
    """The compute capabilities the installed TensorRT-RTX can build for (``["SM75", ...]``, from its
    ``ComputeCapability`` enum; ``[]`` when it is not installed)."""
    if module is None:
        from ..artifacts.trt import import_tensorrt
        from ..errors import UnetrtError

        try:
            module = import_tensorrt("tensorrt-rtx")[0]
        except UnetrtError:
            return []
    members = getattr(getattr(module, "ComputeCapability", None), "__members__", {})
    return [name for name in members if name.startswith("SM")]


def flavour_for_gpu(gpu_cc: tuple[int, int] | None, installed: dict[str, str],
                    rtx_sms: list[str] | None = None) -> tuple[str | None, str]:
    """Which installed flavour can build and run a plan for GPU ``gpu_cc``: ``(flavour, "")`` or
    ``(None, why)``. Standard TensorRT targets every GPU; TensorRT-RTX only those in ``rtx_sms``
    (its ``ComputeCapability`` targets: no SM90/SM100)."""
    if gpu_cc is None:
        return None, "no CUDA GPU visible"
    if "tensorrt" in installed:
        return "tensorrt", ""
    sm = sm_name(gpu_cc)
    if "tensorrt-rtx" in installed:
        sms = rtx_targets() if rtx_sms is None else rtx_sms
        if sm in sms:
            return "tensorrt-rtx", ""
        return None, (f"tensorrt-rtx {installed['tensorrt-rtx']} has no {sm} target (its targets: {', '.join(sms)}) "
                      f"and standard TensorRT is not installed (pip install 'unetrt[gpu]')")
    return None, "no TensorRT flavour installed (pip install 'unetrt[gpu]' or 'unetrt[rtx]')"


def flavour_here() -> tuple[str | None, str]:
    """:func:`flavour_for_gpu` for this machine's GPU 0 and installed flavours."""
    return flavour_for_gpu(probe_gpu_cc(), installed_flavours())
