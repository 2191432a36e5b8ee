"""``unetrt export`` / ``unet-export``: a UNet to ONNX (dynamic N/H/W, verified), FP16/INT8 ONNX and engines."""

from __future__ import annotations

import json

import click

from ..errors import UnetrtError
from .options import (ALIGN, DEFAULT_ARCH, Shape, build_profiles, engine_options, fp16_options, handle_errors,
                      int8_options, make_console, merge_model_kwargs, model_options)
from .progress import Reporter
from .render import render_export, summary

@click.command("export")
@model_options
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: export/<name>).")
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True, help="ONNX opset.")
@click.option("--static", is_flag=True, help="Fix N, H, W to --shape instead of exporting them dynamic.")
@click.option("--shape", type=Shape((2, 3)), default=None, help="Static export size: HxW or NxHxW.")
@click.option("--align", type=ALIGN, default="auto", show_default=True,
              help="auto: derived from the model's shape guards; N: H and W multiples of N (1: every size).")
@click.option("--no-simplify", is_flag=True, help="Skip onnxsim.")
@click.option("--no-verify", is_flag=True, help="Skip the ONNX Runtime vs eager parity sweep.")
@click.option("--atol", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True,
              help="FP32 parity bar: max abs error <= ATOL * max(1, |ref|max).")
@fp16_options
@int8_options
@engine_options
@click.option("--force", is_flag=True, help="Replace artifacts in a non-empty output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@handle_errors
def export_cmd(arch, factory, model_kwargs_json, checkpoint, in_channels, classes, width, bilinear, output, opset,
               static, shape, align, no_simplify, no_verify, atol, fp16, fp16_io, fp16_atol, fp16_argmax,
               calib_images, int8, int8_cpu, calib_count, calib_method, int8_argmax, int8_dice, int8_max_float,
               engine, trt, min_shape, opt_shape, max_shape, workspace, builder_opt_level,
               timing_cache, compute_capability, version_compatible, tf32, detailed_profiling, force, as_json):
    """Export a UNet to ONNX (dynamic N/H/W, verified against eager PyTorch), optionally FP16 and a
    TensorRT engine."""
    from ..exporter import ExportConfig, export
    from ..exporter.steps import EngineOptions

    if not arch and not factory:
        arch = DEFAULT_ARCH
    if shape and not static:
        raise UnetrtError("--shape is only used with --static", "--static --shape HxW", "add --static")
    static_shape = None
    if static:
        static_shape = (1, *shape) if shape and len(shape) == 2 else (tuple(shape) if shape else (1, 256, 256))
    name = arch or factory.split(":")[-1]
    config = ExportConfig(
        arch=arch, factory=factory, checkpoint=checkpoint, opset=opset, static_shape=static_shape, align=align,
        model_kwargs=merge_model_kwargs(factory, model_kwargs_json, in_channels, classes, width, bilinear),
        output_dir=output or f"export/{name}", simplify=not no_simplify, verify=not no_verify, force=force,
        atol_factor=atol, fp16=fp16 or fp16_io, fp16_io=fp16_io, fp16_atol=fp16_atol, fp16_min_argmax=fp16_argmax,
        calib_images=calib_images, engine=engine, int8=int8 or int8_cpu, int8_cpu=int8_cpu, calib_count=calib_count,
        calib_method=calib_method, int8_min_argmax=int8_argmax, int8_min_dice=int8_dice, int8_max_float=int8_max_float,
        engine_options=EngineOptions(
            flavour=trt, profiles=build_profiles(min_shape, opt_shape, max_shape),
            workspace_bytes=workspace * 2**20 if workspace else None, optimization_level=builder_opt_level,
            timing_cache=timing_cache, compute_capabilities=list(compute_capability) or None,
            version_compatible=version_compatible, tf32=tf32, detailed_profiling=detailed_profiling))
    console = make_console()
    with Reporter(console) as report:
        result = export(config, progress=report)
    data = result.manifest.to_dict()
    render_export(data, result.output_dir, console)
    if as_json:
        click.echo(json.dumps(summary(data, result.output_dir), indent=2))


# click passes --model-kwargs as `model_kwargs`; rename to avoid shadowing the helper above.
for _p in export_cmd.params:
    if _p.name == "model_kwargs":
        _p.name = "model_kwargs_json"


def main() -> None:  # console script `unet-export`
    export_cmd(prog_name="unet-export")
