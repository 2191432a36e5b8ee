"""Whether a TensorRT engine listed in a manifest can run here: a pure decision plus separate probes.

An engine is usable only if (1) its file exists, (2) its flavour (TensorRT or TensorRT-RTX) is
installed, (3) its compute-capability targets include the current GPU's (TensorRT-RTX: the targets it
was built for; standard TensorRT: the build GPU's capability, recorded at build time), and (4) the
installed version can load it (same major.minor; a version-compatible TensorRT plan also loads on a
later release of the same major). :func:`engine_unusable_reason` decides from plain values so it can
be tested with any GPU and any installed set; :func:`probe_gpu_cc` and :func:`installed_flavours` read
the machine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..artifacts.trt import FLAVOURS, parse_version, probe_gpu_cc

__all__ = ["engine_unusable_reason", "engine_targets", "probe_gpu_cc", "installed_flavours", "sm_name"]


def sm_name(cc: tuple[int, int]) -> str:
    """``(8, 6)`` -> ``"SM86"`` (TensorRT-RTX's ``ComputeCapability`` spelling)."""
    return f"SM{cc[0]}{cc[1]}"


def _parse_sm(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(?:SM|sm_?)?(\d+)(?:\.(\d+))?", str(text).strip())
    if not match:
        return None
    if match[2] is not None:
        return int(match[1]), int(match[2])
    digits = match[1]
    return (int(digits[:-1]), int(digits[-1])) if len(digits) >= 2 else None


def engine_targets(entry: Mapping[str, Any]) -> list[tuple[int, int]] | None:
    """The compute capabilities an engine entry runs on; ``None`` when the entry does not say.

    Reads ``compute_capabilities`` (written at build time: the RTX targets, or the build GPU of a
    standard TensorRT plan), falling back to the RTX targets in ``options`` and the ``build_gpu``
    record. ``CURRENT`` resolves to the build GPU.
    """
    build = _parse_sm((entry.get("build_gpu") or {}).get("compute_capability") or "")
    names = entry.get("compute_capabilities") or (entry.get("options") or {}).get("compute_capabilities")
    if not names:
        return [build] if build else None
    out = []
    for name in names:
        cc = build if str(name).upper() == "CURRENT" else _parse_sm(name)
        if cc is not None and cc not in out:
            out.append(cc)
    return out or None


def engine_unusable_reason(entry: Mapping[str, Any], directory: Path, *, gpu_cc: tuple[int, int] | None,
                           installed: Mapping[str, str]) -> str | None:
    """Why the engine ``entry`` (a manifest ``engines`` item) cannot run here; ``None`` when it can.

    Args:
        entry: The manifest entry (``path``, ``flavour``, ``version``, ``compute_capabilities``,
            ``build_gpu``, ``options.version_compatible``).
        directory: The export directory the entry's ``path`` is relative to.
        gpu_cc: The current GPU's compute capability, ``None`` without a CUDA GPU.
        installed: ``{flavour: version}`` of the TensorRT flavours that import here.

    Returns:
        One line naming the engine and the reason, or ``None``.
    """
    name = str(entry.get("path", "?"))
    if not (Path(directory) / name).is_file():
        return f"engine {name} listed in the manifest is missing"
    flavour = str(entry.get("flavour") or "")
    if flavour not in FLAVOURS:
        return f"engine {name} skipped: unknown TensorRT flavour {flavour or '(none recorded)'!r}"
    if flavour not in installed:
        return f"engine {name} skipped: {flavour} is not installed (it built this plan)"
    if gpu_cc is None:
        return f"engine {name} skipped: no CUDA GPU visible"
    targets = engine_targets(entry)
    if targets is not None and tuple(gpu_cc) not in targets:
        listed = ", ".join(sm_name(t) for t in targets)
        why = ("TensorRT-RTX has no SM90/SM100 target: use standard TensorRT on this GPU"
               if flavour == "tensorrt-rtx" else "a TensorRT plan runs on the GPU model it was built on")
        return (f"engine {name} skipped: built for {listed}, this GPU is {sm_name(gpu_cc)} ({why}); "
                f"rebuild it here")
    built, have = str(entry.get("version") or ""), installed[flavour]
    if built:
        b, h = parse_version(built), parse_version(have)
        compatible = bool((entry.get("options") or {}).get("version_compatible")) and flavour == "tensorrt"
        ok = (b[0] == h[0] and h >= b) if compatible else b == h
        if not ok:
            rule = "a later release of the same major (version-compatible plan)" if compatible else \
                "the same major.minor"
            return f"engine {name} skipped: built by {flavour} {built}, installed {have} (a plan loads on {rule})"
    return None


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
