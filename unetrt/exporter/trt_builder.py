"""Build TensorRT engines (TensorRT 10 / 11 or TensorRT-RTX) from ONNX, as plain serialized plans.

One code path over the API the three share; what differs between versions is decided in
:func:`_capabilities` only. Strongly typed builds (TensorRT >= 10.12, 11.x, TensorRT-RTX) take their
precision from the ONNX, so ``precision="fp16"`` needs the FP16 ONNX from
:func:`unetrt.exporter.fp16.convert_fp16` and is refused for an FP32 graph; only TensorRT < 10.12
builds FP16 from the FP32 ONNX with ``BuilderFlag.FP16``. ``precision="int8"`` needs a Q/DQ ONNX
(:func:`unetrt.exporter.int8.quantize_int8`): strongly typed builds take INT8 from it as it is;
TensorRT < 10.12 also needs ``BuilderFlag.INT8`` (and, with ``fp16_fallback``, ``BuilderFlag.FP16``).
TensorRT-RTX builds ahead of time without a GPU, for explicit compute-capability targets.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..artifacts.profiles import ShapeProfile
from ..artifacts.trt import import_tensorrt, parse_version as _version, process_logger
from ..errors import EngineBuildError, ProfileError
from . import trt_support as support
from ..fileio import atomic_write_bytes, sha256_file

if TYPE_CHECKING:
    import tensorrt

__all__ = ["EngineInfo", "ShapeProfile", "build_engine", "import_tensorrt", "DEFAULT_RTX_TARGETS"]

log = logging.getLogger(__name__)

#: TensorRT-RTX targets used when none are given: Turing, Ampere, Ada and Blackwell RTX GPUs. Every one
#: is in the ``ComputeCapability`` enum of TensorRT-RTX 1.7 (the floor ``unetrt[rtx]`` requires; older
#: releases lack some). ``ComputeCapability.CURRENT`` would need a GPU at build time.
DEFAULT_RTX_TARGETS = ("SM75", "SM80", "SM86", "SM89", "SM120", "SM121")
#: ``hardware_compatibility`` values -> ``trt.HardwareCompatibilityLevel`` members (standard TensorRT only).
HARDWARE_LEVELS = {"ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}
_build_gpu = support.build_gpu  # module attributes: tests replace the GPU probe
_runs_on = support.runs_on
#: Called with (phase name, steps done, steps in phase); returning False aborts the build.
BuildProgress = Callable[[str, int, int], "bool | None"]


@dataclass
class EngineInfo:
    """What :func:`build_engine` wrote. ``io`` is read from the network (reading the plan needs a GPU)."""

    path: str
    sha256: str
    flavour: str
    version: str
    precision: str
    profiles: list[dict]
    io: list[dict]
    onnx_sha256: str
    build_seconds: float
    size_bytes: int
    options: dict = field(default_factory=dict)
    #: Where the plan runs: the TensorRT-RTX targets, or the build GPU's capability for standard
    #: TensorRT (``["SM86"]``); ``None`` when unknown.
    compute_capabilities: list[str] | None = None
    #: ``{"name", "compute_capability": "8.6"}`` of the GPU the build ran on (``None``: CPU-only build).
    build_gpu: dict | None = None
    #: Whether TensorRT may use TF32 for FP32 layers (``BuilderFlag.TF32``).
    tf32: bool = False

    def to_dict(self) -> dict:
        """Return a JSON-serialisable copy."""
        return asdict(self)


@dataclass(frozen=True)
class _Capabilities:
    """What one TensorRT flavour/version supports; the only place versions are compared."""

    strongly_typed: bool   # precision comes from the ONNX; BuilderFlag.FP16 is not used
    rtx: bool              # compute-capability targets; no timing cache, no version-compatible plans
    timing_cache: bool
    version_compatible: bool
    hardware_compatibility: bool  # HardwareCompatibilityLevel (TensorRT-RTX only logs "unsupported")


def _capabilities(flavour: str, version: str) -> _Capabilities:
    """Decide the build mode for a TensorRT flavour and version."""
    if flavour == "tensorrt-rtx":
        return _Capabilities(strongly_typed=True, rtx=True, timing_cache=False, version_compatible=False,
                             hardware_compatibility=False)
    return _Capabilities(strongly_typed=_version(version) >= (10, 12), rtx=False, timing_cache=True,
                         version_compatible=True, hardware_compatibility=True)


def _network_flags(trt, caps: _Capabilities) -> int:
    """Network creation flags: STRONGLY_TYPED where precision comes from the ONNX."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 1 << int(flag) if caps.strongly_typed and flag is not None else 0


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, *,
                 profiles: list[dict[str, ShapeProfile]], precision: str = "fp32", flavour: str = "auto",
                 workspace_bytes: int | None = None, optimization_level: int | None = None,
                 timing_cache: str | None = None, compute_capabilities: Sequence[str] | None = None,
                 version_compatible: bool = False, progress: BuildProgress | None = None,
                 tf32: bool | None = None, detailed_profiling: bool = True,
                 fp16_fallback: bool = False, hardware_compatibility: str | None = None,
                 strip_weights: bool = False, refittable: bool = False) -> EngineInfo:
    """Build a serialized TensorRT plan from an ONNX file and write it atomically.

    Args:
        onnx_path: The ONNX model; for ``precision="fp16"`` on strongly typed TensorRT, the FP16 ONNX.
        engine_path: Where to write the plan (no header: trtexec, Triton and C++ load it as is).
        profiles: Optimisation profiles, each ``{input name: ShapeProfile}`` covering every dynamic input.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"`` (a Q/DQ ONNX: explicit quantization; on
            TensorRT < 10.12 with ``BuilderFlag.INT8``); never silently changed.
        flavour: ``"auto"``, ``"tensorrt"`` or ``"tensorrt-rtx"``.
        workspace_bytes: Workspace memory-pool limit; ``None`` keeps TensorRT's default.
        optimization_level: Builder optimisation level 0-5; ``None`` keeps the default (3).
        timing_cache: Timing-cache file, loaded if present and saved after the build (TensorRT only).
        compute_capabilities: TensorRT-RTX targets such as ``["SM86", "SM89"]`` or ``["CURRENT"]``
            (needs a GPU); ``None`` means :data:`DEFAULT_RTX_TARGETS`. Refused on standard TensorRT.
        version_compatible: Build a version-compatible plan (standard TensorRT >= 10 only).
        progress: ``progress(phase, step, total)`` during the build; returning False aborts it.
        tf32: Allow TF32 for FP32 layers. ``None``: off for FP32 engines (FP32 parity at 1e-4 fails on
            Ampere+ with TF32), TensorRT's default (on) for FP16 engines.
        detailed_profiling: ``profiling_verbosity=DETAILED`` so ``unetrt inspect`` shows layer detail
            (tactics, formats); ``False`` records layer names only.
        fp16_fallback: With ``precision="int8"`` on weakly typed TensorRT (< 10.12), let the layers
            without Q/DQ run in FP16 (``BuilderFlag.FP16``); refused where precision is strongly typed.
        hardware_compatibility: ``"ampere_plus"`` (the plan runs on any Ampere or later GPU) or
            ``"same_compute_capability"`` (any GPU of the build GPU's compute capability); standard
            TensorRT only (``HardwareCompatibilityLevel``; TensorRT-RTX targets compute capabilities).
        strip_weights: A weight-stripped plan (``BuilderFlag.STRIP_PLAN`` + ``REFIT_IDENTICAL``): small,
            refitted from the same ONNX's weights before it runs (the runner does it at activate,
            ``unetrt refit`` writes the full plan).
        refittable: A refittable plan (``BuilderFlag.REFIT``): weights can be replaced later.

    Returns:
        An :class:`EngineInfo`.

    Raises:
        EngineBuildError: Parse or build failure, abort, or an option the flavour cannot honour.
        ProfileError: A profile does not fit the network's inputs.
        MissingDependencyError: No TensorRT flavour is installed.
    """
    trt, flavour, version = import_tensorrt(flavour)
    caps = _capabilities(flavour, version)
    onnx_path, engine_path = os.fspath(onnx_path), os.fspath(engine_path)
    targets = _check_options(caps, flavour, precision, timing_cache, compute_capabilities, version_compatible,
                             optimization_level, workspace_bytes, fp16_fallback, hardware_compatibility)
    if not os.path.isfile(onnx_path):
        raise EngineBuildError(f"ONNX file not found: {onnx_path}", "an existing .onnx file", "export it first")
    _check_onnx_precision(onnx_path, precision, caps)
    if caps.rtx and (strip_weights or refittable) and _build_gpu() is None:
        raise EngineBuildError("a weight-stripped or refittable TensorRT-RTX plan was requested without a GPU",
                               "a CUDA GPU at build time (TensorRT-RTX 1.7.1 without one fails such builds of "
                               "convolution networks with cudaError 35; plain plans build without a GPU)",
                               "build it on a GPU machine, or drop --strip-weights/--refittable")
    logger = process_logger(trt).reset()
    builder: tensorrt.Builder = trt.Builder(logger)
    network: tensorrt.INetworkDefinition = builder.create_network(_network_flags(trt, caps))
    parser: tensorrt.OnnxParser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        raise EngineBuildError(support.parser_errors(parser, onnx_path), "an ONNX graph TensorRT can import",
                               "simplify the graph or replace the unsupported op")
    io = support.network_io(trt, network)
    config: tensorrt.IBuilderConfig = builder.create_builder_config()
    _add_profiles(builder, config, io, profiles)
    options = _configure(trt, builder, config, caps, precision, workspace_bytes, optimization_level,
                         targets, version_compatible, fp16_fallback)
    options.update(_portability(trt, config, hardware_compatibility, strip_weights, refittable))
    use_tf32 = (precision != "fp32") if tf32 is None else bool(tf32)
    if not use_tf32:
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default in every flavour
    config.profiling_verbosity = (trt.ProfilingVerbosity.DETAILED if detailed_profiling
                                  else trt.ProfilingVerbosity.LAYER_NAMES_ONLY)
    options["profiling_verbosity"] = "detailed" if detailed_profiling else "layer_names_only"
    cache, cache_note = support.load_timing_cache(config, timing_cache) if timing_cache else (None, None)
    gpu = _build_gpu()
    monitor = support.make_monitor(trt, progress, logger)
    config.progress_monitor = monitor
    start = time.perf_counter()
    with support.signals_stop_build(monitor):
        plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    support.raise_signal(monitor)
    if monitor.interrupted or logger.interrupted:
        raise KeyboardInterrupt
    if monitor.error is not None:
        raise monitor.error
    if plan is None:
        raise _build_failed(onnx_path, monitor.aborted, logger.summary())
    data = memoryview(plan).cast("B")
    atomic_write_bytes(engine_path, data)
    if cache is not None:
        used = config.get_timing_cache()
        if used is None:
            cache_note = "timing cache: TensorRT returned none after the build; file left unchanged"
        else:
            atomic_write_bytes(str(timing_cache), memoryview(used.serialize()).cast("B"))
    options.update(timing_cache=timing_cache, warnings=logger.warnings[-20:])
    if cache_note:
        options["timing_cache_note"] = cache_note
    return EngineInfo(path=engine_path, sha256=hashlib.sha256(data).hexdigest(), flavour=flavour, version=version,
                      precision=precision, profiles=[{k: p.to_dict() for k, p in prof.items()} for prof in profiles],
                      io=io, onnx_sha256=sha256_file(onnx_path), build_seconds=round(seconds, 3),
                      size_bytes=data.nbytes, options=options, compute_capabilities=_runs_on(targets, gpu),
                      build_gpu=gpu, tf32=use_tf32)


def check_flavour_options(flavour: str, version: str, *, timing_cache: str | None = None,
                          compute_capabilities: Sequence[str] | None = None, version_compatible: bool = False,
                          hardware_compatibility: str | None = None) -> None:
    """Refuse, before any export work, build options ``flavour`` cannot honour (what :func:`build_engine`
    would refuse after tracing and conversion).

    Raises:
        EngineBuildError: e.g. a timing cache on TensorRT-RTX or compute-capability targets on TensorRT.
    """
    _check_options(_capabilities(flavour, version), flavour, "fp32", timing_cache, compute_capabilities,
                   version_compatible, None, None, hardware_compatibility=hardware_compatibility)


def _build_failed(onnx_path: str, aborted: bool, summary: str) -> EngineBuildError:
    """The error for a ``build_serialized_network`` that returned None."""
    if aborted:
        return EngineBuildError(f"engine build of {onnx_path} aborted by the progress callback",
                                "a finished build", "let the build run to completion")
    memory = re.search("OutOfMemory|workspace", summary, re.IGNORECASE)
    return EngineBuildError(f"TensorRT could not build {onnx_path}: {summary}",
                            "a network TensorRT can build for these profiles",
                            "raise workspace_bytes or lower the max profile shapes" if memory
                            else "check the profiles, workspace and compute-capability targets")


def _check_options(caps, flavour, precision, timing_cache, targets, version_compatible, level, workspace,
                   fp16_fallback=False, hardware_compatibility=None):
    """Refuse options the flavour cannot honour; return the resolved TensorRT-RTX targets."""
    if hardware_compatibility is not None and hardware_compatibility not in HARDWARE_LEVELS:
        raise EngineBuildError(f"unknown hardware compatibility level {hardware_compatibility!r}",
                               f"one of {sorted(HARDWARE_LEVELS)}", "pick one of those")
    if hardware_compatibility is not None and not caps.hardware_compatibility:
        raise EngineBuildError(f"hardware compatibility {hardware_compatibility!r} was requested on {flavour}",
                               "standard TensorRT (TensorRT-RTX ignores HardwareCompatibilityLevel and builds for "
                               "its compute-capability targets)",
                               "drop --hardware-compat (hardware_compatibility) and list the targets with "
                               "--compute-capability (compute_capabilities), or build with --trt tensorrt")
    if precision not in ("fp32", "fp16", "int8"):
        raise EngineBuildError(f"unknown precision {precision!r}", "'fp32', 'fp16' or 'int8'", "pick one of those")
    if fp16_fallback and (precision != "int8" or caps.strongly_typed):
        raise EngineBuildError(f"FP16 fallback requested for a {precision} build on {flavour}",
                               "fp16_fallback only for INT8 on weakly typed TensorRT (< 10.12); strongly typed "
                               "builds run non-quantized layers in the ONNX's own types",
                               "drop fp16_fallback")
    if level is not None and (not isinstance(level, int) or level not in range(6)):
        raise EngineBuildError(f"optimization_level {level}", "an integer 0-5", "fix the level")
    if workspace is not None and (not isinstance(workspace, int) or workspace <= 0):
        raise EngineBuildError(f"workspace_bytes {workspace!r}", "a positive number of bytes", "fix the limit")
    if timing_cache and not caps.timing_cache:
        raise EngineBuildError(f"a timing cache was requested on {flavour}",
                               "no timing cache: TensorRT-RTX compiles kernels at run time and ignores it",
                               "drop timing_cache (use the TensorRT-RTX runtime cache when running)")
    if version_compatible and not caps.version_compatible:
        raise EngineBuildError(f"a version-compatible plan was requested on {flavour}",
                               "standard TensorRT >= 10", "drop version_compatible or build with TensorRT")
    if targets is not None and not caps.rtx:
        raise EngineBuildError(f"compute-capability targets {list(targets)} were given to {flavour}",
                               "targets only with TensorRT-RTX (TensorRT builds for the GPU it runs on)",
                               "drop compute_capabilities or build with TensorRT-RTX")
    if not caps.rtx:
        return None
    return [str(t).upper() for t in (DEFAULT_RTX_TARGETS if targets is None else targets)]


def _check_onnx_precision(onnx_path: str, precision: str, caps: _Capabilities) -> None:
    """Refuse to build an engine whose precision would differ from the request."""
    import onnx

    model = onnx.load(onnx_path, load_external_data=False)
    g = model.graph
    has_fp16 = (any(t.data_type == onnx.TensorProto.FLOAT16 for t in g.initializer)
                or any(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
                       for v in [*g.input, *g.output, *g.value_info])
                or any(n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT16
                                                   for a in n.attribute) for n in g.node))
    has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in g.node)
    if precision == "int8" and not has_qdq:
        raise EngineBuildError(f"precision 'int8' requested but {onnx_path} holds no QuantizeLinear/DequantizeLinear",
                               "a Q/DQ ONNX: TensorRT takes INT8 as explicit quantization only",
                               "quantize it with unetrt.exporter.int8.quantize_int8 (unet-export --int8)")
    if precision != "int8" and has_qdq:
        raise EngineBuildError(f"precision {precision!r} requested but {onnx_path} holds Q/DQ (INT8) nodes",
                               "a float ONNX for a float engine", "pass precision='int8', or the float ONNX")
    if precision == "fp32" and has_fp16:
        raise EngineBuildError(f"precision 'fp32' requested but {onnx_path} holds float16 tensors",
                               "the FP32 ONNX for an FP32 engine", "pass the FP32 ONNX, or precision='fp16'")
    if precision == "fp16" and caps.strongly_typed and not has_fp16:
        raise EngineBuildError(f"precision 'fp16' requested but {onnx_path} holds no float16 tensors",
                               "an FP16 ONNX: strongly typed TensorRT takes precision from the graph",
                               "convert it with unetrt.exporter.fp16.convert_fp16 and pass that file")


def _configure(trt: Any, builder: "tensorrt.Builder", config: "tensorrt.IBuilderConfig", caps: _Capabilities,
               precision: str, workspace: int | None, level: int | None, targets: list[str] | None,
               version_compatible: bool, fp16_fallback: bool = False) -> dict:
    """Apply flags and limits to the builder config; return the options as recorded in EngineInfo."""
    flags = []
    if precision == "int8" and not caps.strongly_typed:
        flag = getattr(trt.BuilderFlag, "INT8", None)
        if flag is None or not getattr(builder, "platform_has_fast_int8", True):
            raise EngineBuildError("precision 'int8' requested but this TensorRT/GPU has no INT8 support",
                                   "BuilderFlag.INT8 and a GPU with fast INT8", "build FP32/FP16 instead")
        config.set_flag(flag)
        flags.append("INT8")
        if fp16_fallback:
            config.set_flag(trt.BuilderFlag.FP16)
            flags.append("FP16")
    if precision == "fp16" and not caps.strongly_typed:
        if not getattr(builder, "platform_has_fast_fp16", True):
            raise EngineBuildError("precision 'fp16' requested but this GPU has no fast FP16",
                                   "a GPU with fast FP16", "build FP32, or on an FP16-capable GPU")
        config.set_flag(trt.BuilderFlag.FP16)
        flags.append("FP16")
    if version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        flags.append("VERSION_COMPATIBLE")
    if workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    if level is not None:
        config.builder_optimization_level = level
    if targets is not None:
        known = [k for k in trt.ComputeCapability.__members__ if k != "NONE"]
        unknown = [t for t in targets if t not in known]
        if unknown or not targets:
            raise EngineBuildError(f"unknown compute-capability targets {unknown or targets}",
                                   f"some of {known}", "fix compute_capabilities")
        rtx_config: Any = config  # TensorRT-RTX-only API: not in the TensorRT 10.13 stubs
        rtx_config.num_compute_capabilities = len(targets)
        for i, target in enumerate(targets):
            if rtx_config.set_compute_capability(getattr(trt.ComputeCapability, target), i) is False:
                raise EngineBuildError(f"TensorRT-RTX refused compute-capability target {target} at index {i}",
                                       f"{len(targets)} targets set after num_compute_capabilities",
                                       "report this with the TensorRT log")
    return {"strongly_typed": caps.strongly_typed, "builder_flags": flags, "fp16_fallback": fp16_fallback,
            "workspace_bytes": workspace,
            "optimization_level": level, "compute_capabilities": targets, "version_compatible": version_compatible}


def _portability(trt: Any, config: "tensorrt.IBuilderConfig", hardware_compatibility: str | None,
                 strip_weights: bool, refittable: bool) -> dict:
    """Hardware compatibility and weight stripping / refit flags; return them as recorded in the manifest."""
    flags = []
    if hardware_compatibility is not None:
        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel,
                                                      HARDWARE_LEVELS[hardware_compatibility])
    if strip_weights:  # refitted from the same ONNX: identical weights keep the full plan's speed
        flags += ["STRIP_PLAN", "REFIT_IDENTICAL"]
    elif refittable:
        flags.append("REFIT")
    for name in flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    return {"hardware_compatibility": hardware_compatibility, "weight_stripped": bool(strip_weights),
            "refittable": bool(strip_weights or refittable), "portability_flags": flags}


def _add_profiles(builder: "tensorrt.Builder", config: "tensorrt.IBuilderConfig", io: list[dict],
                  profiles: Sequence[Mapping[str, ShapeProfile]]) -> None:
    """Check every profile against the network inputs and add it to the config."""
    inputs = {t["name"]: t["shape"] for t in io if t["mode"] == "input"}
    dynamic = sorted(n for n, shape in inputs.items() if -1 in shape)
    if dynamic and not profiles:
        raise ProfileError(f"no optimisation profile for dynamic inputs {dynamic}", "at least one profile",
                           "pass profiles=[{'input': ShapeProfile.parse(min, opt, max)}]")
    for k, profile in enumerate(profiles):
        if not isinstance(profile, Mapping) or not all(isinstance(v, ShapeProfile) for v in profile.values()):
            raise ProfileError(f"profile {k} is {profile!r}", "a dict {input name: ShapeProfile}",
                               "build shapes with ShapeProfile.parse(min, opt, max)")
        unknown = sorted(set(profile) - set(inputs))
        if unknown:
            raise ProfileError(f"profile {k} names unknown inputs {unknown}", f"inputs among {sorted(inputs)}",
                               "use the network's input names")
        missing = [n for n in dynamic if n not in profile]
        if missing:
            raise ProfileError(f"profile {k} does not cover dynamic inputs {missing}",
                               "a min/opt/max shape for every dynamic input", "add them to the profile")
        trt_profile = builder.create_optimization_profile()
        for name, shape in profile.items():
            net = inputs[name]
            if len(profile[name].min) != len(net):
                raise ProfileError(f"profile {k} gives {name!r} rank {len(shape.min)}",
                                   f"rank {len(net)} as in the network {net}", "fix the shapes")
            for i, d in enumerate(net):
                if d != -1 and not shape.min[i] == shape.opt[i] == shape.max[i] == d:
                    raise ProfileError(f"profile {k} sets static dim {i} of {name!r} to "
                                       f"{shape.min[i]}/{shape.opt[i]}/{shape.max[i]}",
                                       f"{d} as in the network {net}", "keep static dimensions as they are")
            trt_profile.set_shape(name, shape.min, shape.opt, shape.max)  # type: ignore[arg-type]  # tuples -> Dims
        config.add_optimization_profile(trt_profile)


def build_mode(flavour: str = "auto") -> tuple[str, str, bool]:
    """``(flavour, version, strongly_typed)`` of the TensorRT that ``build_engine`` would use.

    Strongly typed builds take FP16 from an FP16 ONNX; weakly typed ones (TensorRT < 10.12)
    build FP16 from the FP32 ONNX with ``BuilderFlag.FP16``.
    """
    _, name, version = import_tensorrt(flavour)
    return name, version, _capabilities(name, version).strongly_typed
