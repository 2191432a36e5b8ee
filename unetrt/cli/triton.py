"""``unetrt triton``: write a Triton Inference Server model repository from an export."""

from __future__ import annotations

import click

from ..serve.configs import DEFAULT_MAX_PIXELS
from .options import apply_options, handle_errors, make_console

PLATFORM_CHOICES = ("python", "onnx", "tensorrt", "all")


def serving_options(f):
    """--max-batch/--instances/--max-queue-delay-us/--dynamic-batching (shared with ``unetrt serve``)."""
    options = [
        click.option("--max-batch", type=click.IntRange(min=1), default=None,
                     help="max_batch_size (default: the engine profile's max N, else 8)."),
        click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Model instances per device."),
        click.option("--max-queue-delay-us", type=click.IntRange(min=0), default=100, show_default=True,
                     help="How long the dynamic batcher may wait to form a larger batch."),
        click.option("--dynamic-batching/--no-dynamic-batching", default=True, show_default=True,
                     help="Dynamic batching (Triton merges only requests of equal shape)."),
        click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
                     help="Most pixels one request may carry (N x H x W, or H x W of an image for NAME_image); "
                          "larger requests get 400 / INVALID_ARG."),
    ]
    return apply_options(f, options)


@click.command("triton")
@handle_errors
@click.argument("export_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", "repo", required=True, type=click.Path(), help="Repository directory to write.")
@click.option("--name", default="unet", show_default=True, help="Model name (the ensemble is NAME_image).")
@click.option("--platform", "platforms", multiple=True, default=("python",), show_default=True,
              help="python, onnx, tensorrt or all (repeat or comma-separate for several).")
@serving_options
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="Instance kind of the python and ONNX models (TensorRT plans always run on the GPU).")
@click.option("--with-preprocess", is_flag=True, help="Add NAME_image: image bytes in, PNG mask out.")
@click.option("-s", "--scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Image downscaling factor of NAME_image (as unet-predict --scale).")
@click.option("--shape-buckets", default=None, metavar="SIZES",
              help="With --with-preprocess: pad H and W up to the nearest of these sizes (e.g. 256,512,1024) so "
                   "mixed-size requests batch; masks are cropped back.")
@click.option("--force", is_flag=True, help="Replace an existing non-empty repository.")
@click.option("--build-on-start", is_flag=True,
              help="Ship the ONNX instead of a TensorRT plan; `unetrt build REPO` in the serving image (e.g. a "
                   "Kubernetes init container) builds the plan with the server's TensorRT.")
def triton_cmd(export_dir, repo, name, platforms, max_batch, instances, max_queue_delay_us, dynamic_batching,
               max_pixels, device, with_preprocess, scale, shape_buckets, force, build_on_start):
    """Write a Triton model repository (config.pbtxt from ModelConfig protobufs) for EXPORT_DIR."""
    from ..errors import terminate_as_interrupt
    from ..serve.repository import write_repository

    with terminate_as_interrupt():  # SIGTERM unwinds: the staging directory goes, the target stays as it was
        plan = write_repository(export_dir, repo, name=name, platforms=platforms, max_batch=max_batch,
                                instances=instances, max_queue_delay_us=max_queue_delay_us,
                                dynamic_batching=dynamic_batching, with_preprocess=with_preprocess, device=device,
                                scale=scale, shape_buckets=shape_buckets, max_pixels=max_pixels, force=force,
                                build_on_start=build_on_start)
    err_console = make_console()
    for model, config in plan.configs.items():
        kind = config.platform or f"backend {config.backend}"
        err_console.print(f"  {model:<24} {kind:<18} max_batch_size {config.max_batch_size}")
    for note in plan.notes:
        err_console.print(f"  [dim]note: {note}[/]")
    click.echo(str(plan.root))
