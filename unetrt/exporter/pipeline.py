"""The export chain: model → torch.export → ONNX → simplify → verify → artifacts + manifest.

Each step is an explicit call here; nothing triggers another step behind the caller's back.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..artifacts import names
from ..artifacts.manifest import (ArtifactFile, CheckpointRef, DynamicAxes, ExportInfo, InputSection, Manifest,
                                  ModelSection, OnnxArtifact, OutputSection, ParityRow, SizeExample, Verification,
                                  now_iso,
                                  tool_versions)
from ..artifacts.source import ModelSource
from ..errors import AlignmentError, terminate_as_interrupt
from ..fileio import check_output_dir, sha256_file
from ..models.build_info import build_config
from ..models.geometry import input_channels, output_spatial, spatial_dims
from ..parity import Tolerance
from . import onnx_io, preflight, steps
from .config import ExportConfig
from .failures import explain, frozen_branch_fix
from .fp16 import stage as fp16_stage
from .int8 import stage as int8_stage
from .int8.calib import load_calibration_files
from .labels import labels_stage
from .probe import eager_minimum, probe
from .simplify import simplify as run_onnxsim
from .staging import OutputLock, Staging
from .trace import NotTraceableError, sample_shape, trace
from .verify import check, sweep_sizes, verify

ONNX_NAME = names.ONNX
NO_TRT_NOTE = ("no TensorRT engine: neither tensorrt nor tensorrt_rtx imports; pip install 'unetrt[rtx]' "
               "(builds on any machine) or 'unetrt[gpu]' (TensorRT for data-centre GPUs)")


@dataclass
class ExportResult:
    """What :func:`export` wrote: the directory, its typed manifest and the files."""

    output_dir: Path
    manifest: Manifest
    files: list[Path]

    @property
    def onnx_path(self) -> Path:
        return self.output_dir / ONNX_NAME


Progress = Callable[[str], None]


def model_source(config: ExportConfig) -> ModelSource:
    """The :class:`ModelSource` an export config names."""
    return ModelSource(arch=config.arch, factory=config.factory, kwargs=config.model_kwargs,
                       checkpoint=config.checkpoint)


def build_model(config: ExportConfig) -> tuple[nn.Module, ModelSection, list | None, Any]:
    """Instantiate the model and load the checkpoint.

    Returns:
        ``(model, manifest model section, mask_values, zoo spec or None)``.
    """
    source = model_source(config)
    from ..models import build_model as build_source, zoo_spec

    model, meta = build_source(source)
    kwargs = {k: v for k, v in build_config(model).items() if k not in ("arch", "factory")}
    checkpoint = None
    if config.checkpoint:
        checkpoint = CheckpointRef(path=str(Path(config.checkpoint).resolve()), sha256=sha256_file(config.checkpoint))
    section = ModelSection(arch=config.arch, factory=config.factory, kwargs=kwargs,
                           params=sum(p.numel() for p in model.parameters()), checkpoint=checkpoint,
                           weights="checkpoint" if checkpoint else "random-init")
    return model, section, meta.get("mask_values"), zoo_spec(source)


def _resolve_alignment(config: ExportConfig, spec) -> None:
    need = spec.alignment if spec else 1
    if config.align is not None:
        if config.align < 1:
            raise AlignmentError(f"--align {config.align} is not a positive integer", "auto or an integer >= 1",
                                 "use --align auto")
        if config.align % need:
            raise AlignmentError(f"--align {config.align} is incompatible with {spec.name}: it needs H and W "
                                 f"to be multiples of {need}", f"a multiple of {need}",
                                 f"use --align {need} (or auto)")


def static_shape_for(shape: tuple[int, ...] | None, dims: int) -> tuple[int, ...] | None:
    """``static_shape`` as ``(batch, *spatial)`` for a model of ``dims`` spatial axes: ``(H, W)`` and
    ``(D, H, W)`` get batch 1; ``(N, H, W)`` / ``(N, D, H, W)`` are kept.

    Raises:
        AlignmentError: A shape of another length (e.g. ``HxW`` for a volumetric model).
    """
    if shape is None:
        return None
    shape = tuple(int(d) for d in shape)
    if dims == 3 and len(shape) == 3:
        return (1, *shape)
    if dims == 2 and len(shape) == 2:
        return (1, *shape)
    if len(shape) == dims + 1:
        return shape
    forms = "DxHxW or NxDxHxW" if dims == 3 else "HxW or NxHxW"
    raise AlignmentError(f"static shape {'x'.join(map(str, shape))} for a {dims}-D model", forms,
                         f"pass --shape {'64x64x64' if dims == 3 else '256x256'} (or with the batch first)")


def _check_static(model: nn.Module, in_ch: int, shape: tuple[int, ...], spec) -> None:
    n, *sizes = shape
    min_size = spec.min_size if spec else 1
    align = spec.alignment if spec else 1
    axes = "D, H and W" if len(sizes) == 3 else "H and W"
    if (n < 1 or min(sizes) < min_size or any(s % align for s in sizes)
            or output_spatial(model, tuple(sizes), in_ch) is None):
        what = f"static shape {'x'.join(str(d) for d in (n, in_ch, *sizes))} is not admissible"
        expected = f"batch >= 1, {axes} >= {min_size}" + (f" and multiples of {align}" if align > 1 else "")
        raise AlignmentError(what, expected, "choose another --shape")


class _Clock(dict):
    """Seconds per step: ``with clock("trace"): ...``."""

    @contextlib.contextmanager
    def __call__(self, key: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self[key] = time.perf_counter() - start


def export(config: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Run the export chain and write the artifacts + ``manifest.json`` into ``config.output_dir``.

    Raises:
        UnetrtError: on any bad input or failed check; the output directory is left untouched.
        Terminated: SIGTERM arrived (handled like Ctrl-C: nothing is left behind).
    """
    step = progress or (lambda _msg: None)
    target = check_output_dir(config.output_dir, config.force)
    with terminate_as_interrupt(), OutputLock(target):
        check_output_dir(target, config.force)  # again under the lock: an export may have just finished
        return _export(config, target, step)


def _export(config: ExportConfig, target: Path, step: Progress) -> ExportResult:
    clock, t0 = _Clock(), time.perf_counter()
    step("building model")
    with clock("build"):
        model, model_section, mask_values, spec = build_model(config)
        config = replace(config, static_shape=static_shape_for(config.static_shape, spatial_dims(model)))
        _resolve_alignment(config, spec)
        in_ch = input_channels(model)
        checked = preflight.check(config, spec, in_ch, spatial_dims(model))
        int8_plan = int8_stage.options(config.int8_options) if config.int8_options.wanted else None
        calib_files = load_calibration_files(config.calib_images, in_ch, max(8, 2 * config.int8_options.calib_count)) \
            if (config.fp16_options.enabled or int8_plan) and config.calib_images else None
        calib = [a for _, a in calib_files[:8]] if calib_files and config.fp16_options.enabled else None
        engine_mode = steps.engine_flavour(config.engine_options.build, config.engine_options.flavour)
        steps.check_timing_cache(config.engine_options.timing_cache if engine_mode else None)
    step("tracing with torch.export")
    with clock("trace"):
        traced = _trace_step(config, model, in_ch, spec)
    step("converting to ONNX")
    with clock("convert"):
        proto, same = _convert_step(config, model, in_ch, spec, traced)
    step("simplifying")
    with clock("simplify"):
        simplify_report = None
        pads_before = onnx_io.op_counts(proto).get("Pad", 0)
        if config.simplify:
            proto, simplify_report = run_onnxsim(proto)  # drops most no-op Pads itself
        onnx_io.strip_noop_pads(proto)  # once, after onnxsim: the no-op Pads it left
        pads_removed = pads_before - onnx_io.op_counts(proto).get("Pad", 0)
    inp, out, info = _describe(config, model, in_ch, traced, same)
    info.opset = onnx_io.file_opset(proto)
    if info.opset != config.opset:
        info.notes.append(f"--opset {config.opset} was requested; {traced.exporter} wrote opset {info.opset}")
    info.notes.extend(checked.notes)
    static = inp.static_shape
    dims = traced.spatial_dims
    profiles = config.engine_options.profiles or [
        {onnx_io.INPUT_NAME: steps.default_profile(in_ch, traced.alignment, traced.min_size, static, dims)}]
    if engine_mode:
        steps.check_profiles(profiles, in_ch, traced.alignment, traced.min_size, static, dims)
    sizes = sweep_sizes(traced.alignment, traced.min_size or 1, residues=traced.residues,
                        static=config.static_shape, spatial_dims=dims)
    with Staging(target) as staging:
        onnx_path = staging.path / ONNX_NAME
        onnx_io.save_onnx(proto, onnx_path)
        rows: list[ParityRow] = []
        if config.verify_options.enabled:
            step("verifying parity (onnxruntime CPU vs eager)")
            with clock("verify"):
                rows = verify(model, str(onnx_path), in_ch, sizes, tolerance=Tolerance(config.verify_options.atol_factor))
                check(rows, "ONNX (onnxruntime CPU) vs eager", fix=frozen_branch_fix(traced.exporter,
                                                                                 traced.export_error))
        out.examples = [SizeExample(input=r.input_shape[2:], output=r.output_shape[2:])
                        for r in rows[:3] if r.output_shape]
        placeholder = OnnxArtifact(path=ONNX_NAME, sha256="0" * 64)
        manifest = Manifest(model=model_section, input=inp, output=out, export=info, onnx=placeholder,
                            verification=_verification(config, rows), created=now_iso(), tools=tool_versions(),
                            mask_values=mask_values)
        step("writing ONNX")
        onnx_io.set_metadata(proto, manifest.onnx_metadata())
        onnx_io.set_metadata(proto, {"unetrt.verification": _verification_summary(rows)})
        written = onnx_io.save_onnx(proto, onnx_path)
        manifest.onnx = OnnxArtifact(path=ONNX_NAME, sha256=sha256_file(onnx_path), opset=onnx_io.file_opset(proto),
                                     nodes=len(proto.graph.node), op_counts=onnx_io.op_counts(proto),
                                     pads_removed=pads_removed,
                                     simplify=simplify_report.to_dict() if simplify_report else None)
        if config.labels_options.enabled:
            step("appending the labels output")
            with clock("labels"):
                manifest.onnx.labels = labels_stage(onnx_path, staging.path, manifest.output.classes, sizes, in_ch,
                                                    config.labels_options.threshold)
        _later_stages(config, model, manifest, staging.path, in_ch, sizes, calib, engine_mode, profiles, clock, step)
        if int8_plan is not None:
            _int8_stages(config, model, manifest, staging.path, in_ch, sizes, calib_files, int8_plan,
                         engine_mode, profiles, clock, step)
        step("writing manifest")
        produced = written + [p for p in sorted(staging.path.iterdir()) if p not in written]
        manifest.artifacts = [ArtifactFile(path=p.name, sha256=sha256_file(p), bytes=p.stat().st_size)
                              for p in produced]
        clock["total"] = time.perf_counter() - t0
        manifest.export.seconds = {k: round(v, 3) for k, v in clock.items()}
        manifest.write(staging.path / names.MANIFEST)
        files = staging.commit()
    return ExportResult(target, manifest, files)


def _later_stages(config: ExportConfig, model: nn.Module, manifest: Manifest, folder: Path, in_ch: int, sizes,
                  calib, engine_mode, profiles, clock: _Clock, step: Progress) -> None:
    """FP16 ONNX and the TensorRT engine, when asked for, into the staging folder."""
    onnx_path, fp16_path = folder / ONNX_NAME, None
    fp16 = config.fp16_options
    if fp16.enabled:
        step("converting to FP16")
        with clock("fp16"):
            manifest.fp16 = fp16_stage.fp16_stage(
                model, onnx_path, folder, in_ch, sizes, keep_io_types=not fp16.io,
                atol_factor=fp16.atol, min_argmax=fp16.min_argmax, calib=calib, progress=step)
        fp16_path = folder / fp16_stage.FP16_ONNX_NAME
    if engine_mode:
        with clock("engine"):
            precision = "fp16" if fp16.enabled else "fp32"
            step(f"building {precision} engine")
            manifest.engines.append(steps.engine_stage(onnx_path, fp16_path, folder, precision, engine_mode,
                                                           config.engine_options, profiles, step))
    elif config.engine_options.build is None:
        manifest.export.notes.append(NO_TRT_NOTE)


def _int8_stages(config: ExportConfig, model: nn.Module, manifest: Manifest, folder: Path, in_ch: int, sizes,
                 calib_files, options, engine_mode, profiles, clock: _Clock, step: Progress) -> None:
    """INT8 ONNX (+ CPU form) and, when engines are built, the INT8 engine."""
    step("quantizing to INT8")
    with clock("int8"):
        manifest.int8 = int8_stage.int8_stage(model, folder / ONNX_NAME, folder, in_ch, sizes,
                                              alignment=manifest.input.alignment, min_size=manifest.input.min_size,
                                              calib_files=calib_files, options=options, progress=step,
                                              static=manifest.input.static_shape)
    if manifest.int8.calibration.get("warning"):
        manifest.export.notes.append(manifest.int8.calibration["warning"])
    if engine_mode:
        with clock("engine_int8"):
            manifest.engines.append(int8_stage.int8_engine_stage(
                folder / names.ONNX_INT8, folder, engine_mode, config.engine_options, profiles, config.fp16_options.enabled, step))


@dataclass
class _Traced:
    program: Any
    sample: torch.Tensor
    alignment: int
    min_size: int | None
    exporter: str = "torch.export"
    residues: int = 16
    notes: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)
    source: str = "guards"          # how the alignment was found (manifest input.alignment_source)
    spatial_dims: int = 2
    export_error: str = ""          # torch.export's failure when the TorchScript fallback ran
    output_names: list[str] = field(default_factory=list)


def _trace_step(config: ExportConfig, model: nn.Module, in_ch: int, spec) -> _Traced:
    dims = spatial_dims(model)
    if config.static_shape is not None:
        _check_static(model, in_ch, config.static_shape, spec)
        sample = torch.randn(config.static_shape[0], in_ch, *config.static_shape[1:])
        with torch.no_grad(), onnx_io.quiet_torch():
            program = torch.export.export(model, (sample,), strict=False)
        return _Traced(program, sample, 1, None, source="spec" if spec else "forced", spatial_dims=dims)
    start_align, start_min, found = _size_rule(config, model, in_ch, spec, dims)
    notes = list(found.notes) if found else []
    try:
        t = trace(model, in_ch, align=config.align, spec_alignment=start_align, spec_min_size=start_min,
                  spatial_dims=dims)
    except NotTraceableError as exc:
        alignment = config.align or start_align
        min_size = start_min if (found or spec) else 16
        sample = torch.randn(sample_shape(in_ch, alignment, min_size, dims))
        note = (f"torch.export could not trace the model ({exc}); used the TorchScript exporter, guarded "
                f"only by the verification sweep over every residue mod 32")
        source = _alignment_source(config, spec, found, alignment, alignment)
        return _Traced(None, sample, alignment, min_size, "torchscript", 32, notes + [note], source=source,
                       spatial_dims=dims, export_error=str(exc))
    source = _alignment_source(config, spec, found, start_align, t.alignment)
    min_size, note = eager_minimum(model, in_ch, t.alignment, t.min_size or 1, dims)
    return _Traced(t.program, torch.randn(t.sample_shape), t.alignment, min_size,
                   notes=notes + t.notes + ([note] if note else []), guards=t.guards, source=source, spatial_dims=dims)


def _size_rule(config: ExportConfig, model: nn.Module, in_ch: int, spec, dims: int):
    """Where tracing starts: (alignment, min size, ProbeResult or None). Forced alignments and zoo
    variants (whose spec states the rule) are not probed; user models are."""
    if config.align is not None or spec is not None:
        return (spec.alignment if spec else 1), (spec.min_size if spec else 1), None
    found = probe(model, in_ch, dims)
    return found.alignment, found.min_size, found


def _alignment_source(config: ExportConfig, spec, found, start: int, final: int) -> str:
    """How the alignment was found: "forced" (--align N), "guards" (torch.export's shape guards
    raised it, or found no rule), "probed" (the eager probe), "spec" (the zoo variant's spec)."""
    if config.align is not None:
        return "forced"
    if final != start:
        return "guards"
    if found is not None and found.probed:
        return "probed"
    return "spec" if spec is not None and (spec.alignment > 1 or spec.min_size > 1) else "guards"


def _convert_step(config: ExportConfig, model: nn.Module, in_ch: int, spec, traced: _Traced):
    try:
        names = traced.output_names = onnx_io.output_names(_eager(model, traced.sample))
    except Exception as exc:  # the model's own error at the tracing sample (e.g. a forced --align)
        raise explain("eager probe", exc, shape=tuple(traced.sample.shape)) from exc
    if traced.program is not None:
        try:
            proto = onnx_io.from_exported_program(traced.program, traced.sample, config.opset, names)
        except Exception as exc:  # torch.onnx raises many types
            raise explain("ONNX conversion", exc, shape=tuple(traced.sample.shape)) from exc
    else:
        try:
            proto = onnx_io.from_torchscript(model, traced.sample, config.opset, dynamic=True, output_names=names)
        except Exception as exc:  # torch.jit tracing runs the model: its own error
            err = explain("TorchScript fallback", exc, shape=tuple(traced.sample.shape))
            err.what = f"{err.what} (torch.export had failed: {traced.export_error})"
            raise type(err)(err.what, err.expected, err.fix) from exc
    if spec:
        same = spec.geometry == "same"
    else:
        same = output_spatial(model, tuple(traced.sample.shape[2:]), in_ch) == tuple(traced.sample.shape[2:])
    onnx_io.rename_dynamic_dims(proto, same_geometry=same)
    return proto, same


def _eager(model: nn.Module, sample: torch.Tensor):
    with torch.no_grad():
        return model(sample)


def _describe(config: ExportConfig, model: nn.Module, in_ch: int, traced: _Traced,
              same: bool) -> tuple[InputSection, OutputSection, ExportInfo]:
    """The manifest's input, output and export sections."""
    dynamic = config.static_shape is None
    volume = traced.spatial_dims == 3
    inp = InputSection(
        name=onnx_io.INPUT_NAME, channels=in_ch, dtype="float16" if config.fp16_options.io else "float32",
        layout="NCDHW" if volume else "NCHW", alignment=traced.alignment, min_size=traced.min_size,
        dynamic=DynamicAxes(batch=dynamic, height=dynamic, width=dynamic, depth=dynamic if volume else None),
        static_shape=None if dynamic else [config.static_shape[0], in_ch, *config.static_shape[1:]],
        pad_to_alignment=traced.alignment > 1, alignment_source=traced.source)
    output_names = traced.output_names or [onnx_io.OUTPUT_NAME]
    out = OutputSection(name=output_names[0], classes=_num_classes(model, in_ch, traced.sample), dtype="float32",
                        geometry="same" if same else "valid", names=output_names if len(output_names) > 1 else [])
    info = ExportInfo(exporter=traced.exporter, opset=config.opset,
                      align_requested="auto" if config.align is None else config.align, notes=list(traced.notes),
                      guards=list(traced.guards), sample_shape=list(traced.sample.shape))
    return inp, out, info


def _verification(config: ExportConfig, rows: list[ParityRow]) -> Verification:
    opts = config.verify_options
    return Verification(backend="onnxruntime-cpu", reference="eager fp32", performed=opts.enabled,
                        tolerance={"max_abs": f"{opts.atol_factor:g} * max(1, |ref|max)"},
                        passed=all(r.passed for r in rows) if rows else None, sizes=rows)


def _verification_summary(rows: list[ParityRow]) -> str:
    import json

    if not rows:
        return json.dumps({"performed": False})
    worst = max((r.max_abs for r in rows if r.compared), default=0.0)
    return json.dumps({"performed": True, "passed": all(r.passed for r in rows), "sizes": len(rows),
                       "worst_max_abs": worst})


def _num_classes(model: nn.Module, in_ch: int, sample: torch.Tensor) -> int:
    from ..models import output_shape

    shape = output_shape(model, (1, in_ch, *sample.shape[2:]))
    return int(shape[1]) if shape else 0



