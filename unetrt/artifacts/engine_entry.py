"""The manifest's ``engines`` item and the rule for whether a plan can run here.

An engine is usable only if (1) its file exists, (2) its flavour (TensorRT or TensorRT-RTX) is
installed, (3) its compute-capability targets include the current GPU's (TensorRT-RTX: the targets it
was built for; standard TensorRT: the build GPU's capability, recorded at build time), and (4) the
installed version can load it (the exact version that built it, or a later one of the same major for a
version-compatible plan) (:meth:`EngineEntry.version_mismatch`). A hardware-compatible (Ampere+) plan runs
on any SM80+ GPU; a weight-stripped plan also needs its ONNX beside it (its weights are refitted from it). :meth:`EngineEntry.unusable_reason`
decides from plain values (the GPU and the installed flavours are arguments), so it is tested with any
GPU and any installed set; :mod:`unetrt.runtime.engine_choice` probes the machine.
"""

from __future__ import annotations

import re
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import Field
from pydantic.dataclasses import dataclass

from . import names
from .refs import ArtifactRef
from .section_config import SECTION_CONFIG, ArtifactPath, Json
from .trt import FLAVOURS

__all__ = ["EngineEntry", "sm_name", "parse_sm", "release"]

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def release(text: str) -> tuple[int, ...]:
    """``"10.16.0.1"`` -> ``(10, 16, 0, 1)`` (trailing zeros dropped, so ``"10.16"`` == ``"10.16.0.0"``);
    ``(0,)`` when it is no version."""
    from packaging.version import InvalidVersion, Version

    try:
        parts = list(Version(str(text)).release)
    except InvalidVersion:
        return (0,)
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def sm_name(cc: tuple[int, int]) -> str:
    """``(8, 6)`` -> ``"SM86"`` (TensorRT-RTX's ``ComputeCapability`` spelling)."""
    return f"SM{cc[0]}{cc[1]}"


def parse_sm(text: str) -> tuple[int, int] | None:
    """``"SM86"``, ``"sm_86"``, ``"8.6"`` -> ``(8, 6)``; ``None`` when it is none of those."""
    match = re.fullmatch(r"(?:SM|sm_?)?(\d+)(?:\.(\d+))?", str(text).strip())
    if not match:
        return None
    if match[2] is not None:
        return int(match[1]), int(match[2])
    digits = match[1]
    return (int(digits[:-1]), int(digits[-1])) if len(digits) >= 2 else None


@dataclass(config=SECTION_CONFIG)
class EngineEntry:
    """A TensorRT plan (no header: trtexec, Triton and C++ load it as is).

    Attributes:
        path: File name in the export directory.
        sha256: Its sha256.
        flavour: ``tensorrt`` or ``tensorrt-rtx``.
        version: The TensorRT version that built it (loading needs that exact version unless
            ``options.version_compatible``).
        precision: ``fp32``, ``fp16`` or ``int8``.
        profiles: Optimisation profiles, each ``{input name: {"min", "opt", "max"}}``.
        io: Network inputs and outputs (name, mode, dtype, shape with -1 for dynamic).
        onnx: The ONNX file it was built from.
        onnx_sha256: That file's sha256.
        build_seconds: Build time.
        size_bytes: Plan size.
        options: Build options (workspace, optimisation level, targets, ``version_compatible``,
            ``hardware_compatibility`` (``ampere_plus``: any SM80+ GPU; ``same_compute_capability``),
            ``weight_stripped`` (refitted from ``onnx`` before it runs), ``refittable``, ...).
        fp16_mode: How FP16 was obtained (strongly typed ONNX or ``BuilderFlag.FP16``).
        int8_mode: How INT8 was obtained (strongly typed Q/DQ, or ``BuilderFlag.INT8`` (+ FP16 fallback)).
        compute_capabilities: Where the plan runs (``["SM86", ...]``): the TensorRT-RTX targets, or
            the build GPU for standard TensorRT; ``None`` when not recorded.
        build_gpu: ``{"name", "compute_capability": "8.6"}`` of the build GPU (``None``: CPU-only build).
        tf32: Whether TensorRT could use TF32 for FP32 layers (``None``: not recorded).
    """

    path: ArtifactPath
    sha256: Sha256
    flavour: Literal["tensorrt", "tensorrt-rtx"] = "tensorrt"
    version: str = ""
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    profiles: list[dict[str, dict[str, list[int]]]] = field(default_factory=list)
    io: list[dict[str, Json]] = field(default_factory=list)
    onnx: str = names.ONNX
    onnx_sha256: Optional[str] = None
    build_seconds: float = 0.0
    size_bytes: int = 0
    options: dict[str, Json] = field(default_factory=dict)
    fp16_mode: Optional[str] = None
    int8_mode: Optional[str] = None
    compute_capabilities: Optional[list[str]] = None
    build_gpu: Optional[dict[str, str]] = None
    tf32: Optional[bool] = None

    @property
    def ref(self) -> ArtifactRef:
        """The artifact this entry describes (an engine of its precision)."""
        return ArtifactRef("engine", self.precision)

    def covers(self, shape: list[int] | tuple[int, ...], input_name: str = names.INPUT) -> bool:
        """Whether some profile admits ``shape`` for ``input_name``."""
        for profile in self.profiles:
            p = profile.get(input_name) or next(iter(profile.values()), None)
            if p and len(p["min"]) == len(shape) and \
                    all(lo <= d <= hi for lo, d, hi in zip(p["min"], shape, p["max"])):
                return True
        return False

    def targets(self) -> list[tuple[int, int]] | None:
        """The compute capabilities the plan runs on; ``None`` when the entry does not say.

        Reads ``compute_capabilities`` (written at build time: the RTX targets, or the build GPU of a
        standard TensorRT plan), falling back to the RTX targets in ``options`` and the ``build_gpu``
        record. ``CURRENT`` resolves to the build GPU.
        """
        build = parse_sm((self.build_gpu or {}).get("compute_capability") or "")
        listed: Any = self.compute_capabilities or self.options.get("compute_capabilities")
        if not listed:
            return [build] if build else None
        out = []
        for name in listed:
            cc = build if str(name).upper() == "CURRENT" else parse_sm(name)
            if cc is not None and cc not in out:
                out.append(cc)
        return out or None

    def version_mismatch(self, installed: str) -> str | None:
        """Why the installed ``installed`` version of this plan's flavour cannot load it (``None``: it can).

        TensorRT's rule: a plan deserialises only with the exact library version that built it (TensorRT
        checks every field: 10.16.0.1 does not load 10.16.0.2's plans); a version-compatible standard
        TensorRT plan (``BuilderFlag.VERSION_COMPATIBLE``) also loads on a later release of the same major.
        TensorRT-RTX plans are not portable across RTX releases. No recorded version: TensorRT itself
        checks on load.
        """
        if not self.version:
            return None
        built, have = release(self.version), release(installed)
        compatible = bool(self.options.get("version_compatible")) and self.flavour == "tensorrt"
        if (built[0] == have[0] and have >= built) if compatible else built == have:
            return None
        rule = ("a later release of the same major (version-compatible plan)" if compatible
                else "the exact version that built it")
        return (f"built by {self.flavour} {self.version}, installed {installed} (a plan loads on {rule}); "
                f"rebuild it here with unetrt build DIR")

    def unusable_reason(self, directory: str | Path, *, gpu_cc: tuple[int, int] | None,
                        installed: dict[str, str]) -> str | None:
        """Why this plan cannot run here; ``None`` when it can.

        Args:
            directory: The export directory :attr:`path` is relative to.
            gpu_cc: The current GPU's compute capability, ``None`` without a CUDA GPU.
            installed: ``{flavour: version}`` of the TensorRT flavours that import here.

        Returns:
            One line naming the engine and the reason, or ``None``.
        """
        name = self.path
        if not (Path(directory) / name).is_file():
            return f"engine {name} listed in the manifest is missing"
        if self.flavour not in FLAVOURS or self.flavour not in installed:
            return f"engine {name} skipped: {self.flavour} is not installed (it built this plan)"
        if gpu_cc is None:
            return f"engine {name} skipped: no CUDA GPU visible"
        hardware = self.options.get("hardware_compatibility")
        targets = self.targets()
        if hardware == "ampere_plus":
            if tuple(gpu_cc) < (8, 0):
                return (f"engine {name} skipped: built hardware-compatible for Ampere and later (SM80+), this GPU is "
                        f"{sm_name(gpu_cc)}; rebuild it here (unetrt build DIR)")
        elif targets is not None and tuple(gpu_cc) not in targets:
            listed = ", ".join(sm_name(t) for t in targets)
            why = ("TensorRT-RTX has no SM90/SM100 target: use standard TensorRT on this GPU"
                   if self.flavour == "tensorrt-rtx" else "a TensorRT plan runs on the GPU model it was built on")
            return (f"engine {name} skipped: built for {listed}, this GPU is {sm_name(gpu_cc)} ({why}); "
                    f"rebuild it here")
        mismatch = self.version_mismatch(installed[self.flavour])
        if mismatch:
            return f"engine {name} skipped: {mismatch}"
        if self.options.get("weight_stripped") and not (Path(directory) / self.onnx).is_file():
            return (f"engine {name} skipped: a weight-stripped plan is refitted from {self.onnx}, which is missing "
                    f"(copy it beside the plan, or write the full plan with unetrt refit DIR)")
        return None
