"""The TensorRT engine stage of the export chain (the FP16 and INT8 stages live in ``fp16/`` and ``int8/``).

Each stage is a plain function the pipeline calls explicitly; each returns its manifest
section and raises :class:`UnetrtError` subclasses on bad input or failed checks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..artifacts import names
from ..artifacts.manifest import EngineEntry
from ..errors import EngineBuildError, MissingDependencyError, ProfileError
from ..models.geometry import round_up
from .config import EngineOptions
from .onnx_io import INPUT_NAME

__all__ = ["EngineOptions", "check_profiles", "check_timing_cache", "default_profile", "engine_flavour",
           "engine_stage"]


def default_profile(in_ch: int, alignment: int, min_size: int | None, static: Sequence[int] | None,
                    spatial_dims: int = 2):
    """min/opt/max for the input: the variant's minimum, 256² (opt) and 1024² at batch 4 (max);
    volumes: the minimum, 64³ (opt) and 192³ at batch 2 (max)."""
    from ..artifacts.profiles import ShapeProfile

    if static is not None:
        shape = tuple(static)
        return ShapeProfile(shape, shape, shape)
    lo = round_up(max(min_size or 1, 1), alignment)
    (opt_side, max_side, max_batch) = (256, 1024, 4) if spatial_dims == 2 else (64, 192, 2)
    opt = round_up(max(opt_side, lo), alignment)
    hi = round_up(max(max_side, opt), alignment)
    k = spatial_dims
    return ShapeProfile((1, in_ch, *(lo,) * k), (1, in_ch, *(opt,) * k), (max_batch, in_ch, *(hi,) * k))


def check_profiles(profiles: Sequence[dict[str, Any]], in_ch: int, alignment: int, min_size: int | None,
                   static: Sequence[int] | None, spatial_dims: int = 2) -> None:
    """Refuse, before building, profile shapes the exported graph cannot take."""
    rank = 2 + spatial_dims
    layout = f"Nx{in_ch}x" + ("DxHxW" if spatial_dims == 3 else "HxW")
    for i, prof in enumerate(profiles):
        if set(prof) != {INPUT_NAME}:
            raise ProfileError(f"profile {i} names inputs {sorted(prof)}", f"exactly the input {INPUT_NAME!r}",
                               "use --min-shape/--opt-shape/--max-shape")
        p = prof[INPUT_NAME]
        for label, shape in (("min", p.min), ("opt", p.opt), ("max", p.max)):
            text = "x".join(map(str, shape))
            if len(shape) != rank or shape[1] != in_ch:
                kind = f" (the model is {'volumetric: expected 5-D' if rank == 5 else '2-D: expected 4-D'})" \
                    if len(shape) != rank else ""
                raise ProfileError(f"profile {i} {label} shape {text}{kind}",
                                   f"{layout} (rank {rank}, {in_ch} channels)", "fix the shape")
            if static is not None and tuple(shape) != tuple(static):
                raise ProfileError(f"profile {i} {label} shape {text} on a static graph",
                                   "x".join(map(str, static)), "re-export without --static or use that shape")
            bad_min = min_size and min(shape[2:]) < min_size
            if bad_min or any(d % alignment for d in shape[2:]):
                axes = "D, H and W" if spatial_dims == 3 else "H and W"
                need = f"{axes} >= {min_size or 1}" + (f" and multiples of {alignment}" if alignment > 1 else "")
                raise ProfileError(f"profile {i} {label} shape {text} is outside what the model supports",
                                   need, "choose another shape")


def check_timing_cache(path: str | None) -> None:
    """An unwritable timing cache must fail before the build, not after it."""
    if not path:
        return
    p = Path(path).expanduser()
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir() or (p.exists() and not os.access(p, os.R_OK | os.W_OK)) or \
            (not p.exists() and not (parent.is_dir() and os.access(parent, os.W_OK))):
        raise EngineBuildError(f"timing cache {path} is not writable", "a readable/writable file path",
                               "choose another --timing-cache path")


def engine_flavour(requested: str | None, flavour: str) -> tuple[str, str, bool] | None:
    """Resolve whether/which TensorRT builds: ``None`` when ``requested`` is auto and none imports."""
    from .trt_builder import build_mode

    if requested is False:
        return None
    try:
        return build_mode(flavour)
    except MissingDependencyError:
        if requested is None and flavour == "auto":
            return None
        raise


def engine_stage(onnx_fp32: Path, onnx_fp16: Path | None, out_dir: Path, precision: str, mode: tuple[str, str, bool],
                 opts: EngineOptions, profiles: list[dict[str, Any]], progress: Callable[[str], None]) -> EngineEntry:
    """Build ``model.engine`` / ``model_fp16.engine`` and return its manifest entry."""
    from .trt_builder import build_engine

    flavour, version, strongly_typed = mode
    source = onnx_fp16 if precision == "fp16" and strongly_typed else onnx_fp32
    if source is None:
        raise EngineBuildError("an FP16 engine needs the FP16 ONNX on strongly typed TensorRT", "--fp16",
                               "export with --fp16")
    name = names.engine_name(precision)

    def on_progress(phase: str, step: int, total: int):
        progress(f"building {precision} engine ({flavour} {version}): {phase} {step}/{total}")
        return True

    info = build_engine(source, out_dir / name, profiles=profiles, precision=precision, flavour=flavour,
                        workspace_bytes=opts.workspace_bytes, optimization_level=opts.optimization_level,
                        timing_cache=opts.timing_cache, compute_capabilities=opts.compute_capabilities,
                        version_compatible=opts.version_compatible, progress=on_progress, tf32=opts.tf32,
                        detailed_profiling=opts.detailed_profiling, **opts.portability()).to_dict()
    info.update(path=name, onnx=source.name,
                fp16_mode="strongly typed, FP16 from the ONNX" if strongly_typed and precision == "fp16" else
                ("BuilderFlag.FP16 on the FP32 ONNX" if precision == "fp16" else None))
    info["options"] = _jsonable(info.get("options") or {})
    return EngineEntry(**info)


def _jsonable(value: Any) -> Any:
    """Build options as plain JSON values (TensorRT enums become their names)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "name", str(value))
