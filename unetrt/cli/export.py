"""``unetrt export`` / ``unet-export``: a UNet to ONNX (dynamic N/H/W, verified), FP16/INT8 ONNX and engines."""

from __future__ import annotations

import json

import click

from ..errors import UnetrtError
from .options import (ALIGN, CALIB_IMAGES, DEFAULT_ARCH, Shape, engine_group, fp16_group, handle_errors, int8_group,
                      labels_group, make_console, merge_model_kwargs, model_options, verify_group)
from . import nnunet_cmds
from .progress import Reporter
from .render import render_export, summary

#: The static export size when --static comes without --shape.
DEFAULT_STATIC_SIDE = 256


@click.command("export")
@handle_errors  # outermost: a bad option group (e.g. unequal profile counts) is one error line too
@model_options
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: export/<name>).")
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True, help="ONNX opset.")
@click.option("--static", is_flag=True, help="Fix N and the spatial axes to --shape instead of exporting them "
              f"dynamic (without --shape: 1x{DEFAULT_STATIC_SIDE}x{DEFAULT_STATIC_SIDE}, 2-D models only).")
@click.option("--shape", type=Shape((2, 3, 4), {3: ("NxHxW, DxHxW", "1x256x256, 64x64x64"),
                                                 4: ("NxDxHxW", "1x64x64x64")}), default=None,
              help="Static export size: HxW or NxHxW (2-D models), DxHxW or NxDxHxW (3-D models).")
@click.option("--align", type=ALIGN, default="auto", show_default=True,
              help="auto: derived from the model's shape guards; N: H and W multiples of N (1: every size).")
@click.option("--no-simplify", is_flag=True, help="Skip onnxsim.")
@labels_group
@verify_group
@fp16_group
@CALIB_IMAGES
@int8_group
@engine_group
@click.option("--force", is_flag=True, help="Replace artifacts in a non-empty output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@nnunet_cmds.export_options
def export_cmd(arch, factory, model_kwargs, checkpoint, in_channels, classes, width, bilinear, output, opset,
               static, shape, align, no_simplify, labels_options, verify_options, fp16_options, calib_images,
               int8_options, engine_options, force, as_json, nnunet):
    """Export a UNet to ONNX (dynamic N/H/W, verified against eager PyTorch), optionally FP16 and a
    TensorRT engine."""
    from ..exporter import ExportConfig, export

    if nnunet.results_dir is None and (nnunet.configuration or nnunet.folds):
        raise UnetrtError("--configuration/--folds are nnU-Net options", "--nnunet RESULTS_DIR", "add --nnunet")
    if nnunet.results_dir is not None and (arch or factory):
        raise UnetrtError("--nnunet with --arch/--model", "one model source", "drop --arch/--model")
    if not arch and not factory:
        arch = DEFAULT_ARCH
    if shape and not static:
        raise UnetrtError("--shape is only used with --static", "--static --shape HxW (or DxHxW)", "add --static")
    static_shape = None
    if static:  # batch 1 is added by the exporter, which knows whether 3 sizes are NxHxW or DxHxW
        static_shape = tuple(shape) if shape else (DEFAULT_STATIC_SIDE, DEFAULT_STATIC_SIDE)
    name = arch or factory.split(":")[-1]
    if nnunet.results_dir is not None:
        base = ExportConfig(static_shape=static_shape, align=align, opset=opset, simplify=not no_simplify,
                            force=force, calib_images=calib_images, verify_options=verify_options,
                            fp16_options=fp16_options, int8_options=int8_options, engine_options=engine_options)
        console = make_console()
        with Reporter(console) as report:
            data = nnunet_cmds.run_export(nnunet, output, checkpoint, base, console, report)
        if as_json:
            click.echo(json.dumps(data, indent=2))
        return
    config = ExportConfig(
        arch=arch, factory=factory, checkpoint=checkpoint, opset=opset, static_shape=static_shape, align=align,
        model_kwargs=merge_model_kwargs(factory, model_kwargs, in_channels, classes, width, bilinear),
        output_dir=output or f"export/{name}", simplify=not no_simplify, force=force, calib_images=calib_images,
        labels_options=labels_options, verify_options=verify_options, fp16_options=fp16_options,
        int8_options=int8_options, engine_options=engine_options)
    console = make_console()
    with Reporter(console) as report:
        result = export(config, progress=report)
    render_export(result.manifest, result.output_dir, console)
    if as_json:
        click.echo(json.dumps(summary(result.manifest, result.output_dir), indent=2))


def main() -> None:  # console script `unet-export`
    export_cmd(prog_name="unet-export")
