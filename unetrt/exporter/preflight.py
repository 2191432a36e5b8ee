"""Checks that run before any heavy export work (tracing, conversion, verification, engine builds).

A profile, static shape or alignment the model cannot take is refused right after the model is
built, in milliseconds, instead of after a trace and a verification sweep. The checks use only
the model's spec (alignment, minimum size), its input channels and the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AlignmentError, ProfileError, UnetrtError
from ..models.geometry import round_up
from .steps import check_profiles, check_timing_cache

#: The size the padding overhead of an alignment is reported at (milesial's usual input).
COST_SIZE = 256
COST_SIZE_3D = 64

__all__ = ["Preflight", "check", "alignment_cost", "admissible_alignment"]


@dataclass
class Preflight:
    """What the checks found out: the input channels and notes for the summary."""

    in_channels: int
    notes: list[str] = field(default_factory=list)


def admissible_alignment(align: int, required: int) -> bool:
    """An alignment the model admits: a multiple of what it requires that matches its 2x poolings.

    A UNet halves H and W at each level, so padding helps only when it lines sizes up with those
    halvings: 1 (any size), a power of two, or a multiple of 16. Anything else (``7``) pads every
    input without lining its size up with the poolings, so it costs pixels and buys nothing.
    """
    if align < 1 or align % max(1, required):
        return False
    return align & (align - 1) == 0 or align % 16 == 0


def alignment_cost(align: int, size: int | None = None, spatial_dims: int = 2) -> str:
    """One line on what padding to multiples of ``align`` costs near ``size`` on every axis
    (default 256x256, or 64x64x64 for a volume)."""
    if align <= 1:
        return "alignment 1: no padding, every size runs as it is"
    k = 3 if spatial_dims == 3 else 2
    size = size or (COST_SIZE_3D if k == 3 else COST_SIZE)
    unit = "voxels" if k == 3 else "pixels"
    at = round_up(size, align)
    worst = round_up(size + 1, align)
    pct = ((at / size) ** k - 1) * 100
    worst_pct = ((worst / (size + 1)) ** k - 1) * 100

    def cube(n: int) -> str:
        return "x".join([str(n)] * k)

    return (f"alignment {align}: {cube(size)} runs as {cube(at)} (+{pct:.1f}% {unit}); worst case near it "
            f"{cube(size + 1)} -> {cube(worst)} (+{worst_pct:.1f}%)")


def _check_align(config, spec, spatial_dims: int = 2) -> list[str]:
    name = spec.name if spec else config.factory
    required = spec.alignment if spec else 1
    if config.align is None:
        return []
    if not admissible_alignment(config.align, required):
        useful = (f"a multiple of {required}" if required > 1
                  else "1 (any size), a power of two or a multiple of 16")
        raise AlignmentError(f"--align {config.align} is not an alignment {name} admits",
                             useful, f"use --align auto (or {max(required, 16)})")
    return [alignment_cost(config.align, spatial_dims=spatial_dims)]


def _check_static(config, spec, in_ch: int) -> None:
    if config.static_shape is None:
        return
    n, *sizes = config.static_shape
    min_size = spec.min_size if spec else 1
    align = config.align or (spec.alignment if spec else 1)
    axes = "D, H and W" if len(sizes) == 3 else "H and W"
    if n < 1 or min(sizes) < min_size or any(s % align for s in sizes):
        raise AlignmentError(f"static shape {'x'.join(str(d) for d in (n, in_ch, *sizes))} is not admissible",
                             f"batch >= 1, {axes} >= {min_size}" + (f" and multiples of {align}" if align > 1 else ""),
                             "choose another --shape")


def _check_profiles(config, spec, in_ch: int) -> None:
    profiles = config.engine_options.profiles
    if not profiles:
        return
    if config.engine_options.build is False:
        raise ProfileError("--min/--opt/--max-shape given with --no-engine", "profiles only for an engine build",
                           "drop the shapes or the --no-engine")
    static = None
    if config.static_shape is not None:
        n, *sizes = config.static_shape
        static = (n, in_ch, *sizes)
    alignment = config.align or (spec.alignment if spec else 1)
    check_profiles(profiles, in_ch, alignment, spec.min_size if spec else None, static)


def _check_opset(config) -> None:
    from .onnx_io import MIN_OPSET, max_opset

    top = max_opset()
    if not MIN_OPSET <= config.opset <= top:
        raise UnetrtError(f"--opset {config.opset} is outside what the installed torch ONNX exporter writes",
                          f"an opset from {MIN_OPSET} to {top}", f"use --opset {MIN_OPSET} (the default) to {top}")


def _check_engine_options(config) -> None:
    """--timing-cache / --compute-capability / --version-compatible refusals, before any tracing."""
    from .steps import engine_flavour
    from .trt_builder import check_flavour_options

    opts = config.engine_options
    asked = opts.timing_cache or opts.compute_capabilities or opts.version_compatible or opts.hardware_compatibility
    if not asked or opts.build is False:
        return
    mode = engine_flavour(opts.build, opts.flavour)
    if mode is not None:
        check_flavour_options(mode[0], mode[1], timing_cache=opts.timing_cache,
                              compute_capabilities=opts.compute_capabilities,
                              version_compatible=opts.version_compatible,
                              hardware_compatibility=opts.hardware_compatibility)


def _check_paths(config) -> None:
    if config.calib_images and not Path(config.calib_images).is_dir():
        raise UnetrtError(f"--calib-images {config.calib_images} is not a directory",
                          "a folder of images or .npy files", "check the path")
    uses_calib = config.fp16_options.enabled or config.int8_options.wanted
    if config.calib_images and not uses_calib:
        raise UnetrtError("--calib-images given without --fp16 or INT8", "calibration inputs for the FP16 search "
                          "or INT8 quantization", "add --fp16 (or an INT8 option) or drop --calib-images")
    check_timing_cache(config.engine_options.timing_cache)


def check(config: Any, spec: Any, in_channels: int, spatial_dims: int = 2) -> Preflight:
    """Validate alignment, static shape, engine profiles and paths of an export configuration.

    Args:
        config: The :class:`~unetrt.exporter.config.ExportConfig`.
        spec: The zoo variant's :class:`~unetrt.models.registry.ModelSpec` (``None`` for ``--model``).
        in_channels: The built model's input channels.
        spatial_dims: 2 (H, W) or 3 (D, H, W), for the wording of notes.

    Returns:
        The input channels and notes for the summary (e.g. what a forced alignment costs).

    Raises:
        AlignmentError: an alignment or static shape the model cannot take.
        ProfileError: a profile of the wrong rank, channels, order or size.
        UnetrtError: a missing calibration folder or unwritable timing cache.
    """
    _check_opset(config)
    notes = _check_align(config, spec, spatial_dims)
    _check_static(config, spec, in_channels)
    _check_profiles(config, spec, in_channels)
    _check_paths(config)
    _check_engine_options(config)
    return Preflight(in_channels, notes)

