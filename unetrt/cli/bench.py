"""``unet-bench`` / ``unetrt bench``: latency and parity vs eager across backends, sizes and batches.

A thin click command over :func:`unetrt.bench.run_grid` and :mod:`unetrt.bench.report`.
``UnetrtError`` becomes one clean error line and exit code 1.
"""

from __future__ import annotations

import click

from ..bench.timing import DEFAULT_MIN_SECONDS
from .options import (DEFAULT_ARCH, LiveHelpOption, backends_help, device_option, handle_errors, make_console,
                      merge_model_kwargs, model_options)

__all__ = ["bench_cmd", "main"]

_REPORTS = (("json_path", "--json"), ("csv_path", "--csv"), ("markdown_path", "--markdown"), ("plot_path", "--plot"))


def _check_outputs(paths: dict) -> None:
    from ..bench.report import check_output_path, require_matplotlib

    for key, flag in _REPORTS:
        if paths.get(key):
            check_output_path(paths[key], flag)
    if paths.get("plot_path"):
        require_matplotlib()


def _run_with_progress(config, console):
    """Run the grid under a rich progress bar on a terminal, with plain progress lines elsewhere."""
    from ..bench.grid import run_grid
    from .progress import Reporter

    with Reporter(console, steps=False) as report:
        return run_grid(config, report)


@click.command("bench")
@model_options
@click.option("--sizes", default="256", show_default=True, help="Input sizes: S (square) or HxW, comma-separated; DxHxW for volumetric models (e.g. 64x96x80).")
@click.option("--batch", "batches", default="1", show_default=True, help="Batch sizes, comma-separated.")
@click.option("--backends", default="eager,ort", show_default=True, cls=LiveHelpOption,
              help_fn=lambda: backends_help("Comma-separated backend names; unavailable ones get a 'skipped' row."))
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed iterations per row (the parity "
              "inference counts as the first).")
@click.option("--iters", type=int, default=None, help="Exactly N timed iterations per row.")
@click.option("--min-seconds", type=float, default=None,
              help=f"Time each row for at least S seconds and 3 iterations (default: {DEFAULT_MIN_SECONDS:g} s "
                   "unless --iters).")
@click.option("--threads", type=int, default=None,
              help="CPU threads for every CPU backend (torch and ONNX Runtime intra-op). Default: all usable cores.")
@device_option()
@click.option("--no-transfers", is_flag=True,
              help="CUDA rows: exclude host<->device copies, like trtexec: TensorRT and ONNX Runtime (I/O "
                   "binding) run on buffers bound once, timed with CUDA events (GPU compute + end-to-end). "
                   "Moot on CPU.")
@click.option("--images", default=None, metavar="DIR",
              help="Real images (resized to cover, centre-cropped, preprocessed) instead of random inputs.")
@click.option("--workdir", default=".unetrt-bench", show_default=True,
              help="Cache of exported ONNX / FP16 ONNX / engines, reused while the model is unchanged.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--ort-opt-level", type=click.Choice(["disable", "basic", "extended", "all"]), default="all",
              show_default=True, help="ONNX Runtime graph optimisation level.")
@click.option("--channels-last", is_flag=True, help="Run eager with a channels-last model.")
@click.option("--json", "json_path", default=None, metavar="PATH", help="Write the results as JSON.")
@click.option("--csv", "csv_path", default=None, metavar="PATH", help="Write the results as CSV.")
@click.option("--markdown", "markdown_path", default=None, metavar="PATH", help="Write a Markdown report.")
@click.option("--plot", "plot_path", default=None, metavar="PATH",
              help="Write a PNG (latency vs resolution, speedup vs eager); needs matplotlib.")
@click.option("--fail-on-parity", is_flag=True, help="Exit with status 1 when a backend fails its parity bar.")
@handle_errors
def bench_cmd(arch, factory, model_kwargs, checkpoint, in_channels, classes, width, bilinear, sizes, batches,
              backends, warmup, iters, min_seconds, threads, device, no_transfers, images, workdir, seed,
              ort_opt_level, channels_last, json_path, csv_path, markdown_path, plot_path, fail_on_parity):
    """Benchmark latency and parity vs eager PyTorch across backends, sizes and batches."""
    from ..bench.grid import BenchConfig
    from ..bench.report import render, write_reports
    from ..bench.timing import TimingPlan

    paths = {"json_path": json_path, "csv_path": csv_path, "markdown_path": markdown_path, "plot_path": plot_path}
    _check_outputs(paths)
    if not arch and not factory:
        arch = DEFAULT_ARCH
    config = BenchConfig(arch=arch, factory=factory, checkpoint=checkpoint,
                         model_kwargs=merge_model_kwargs(factory, model_kwargs, in_channels, classes, width, bilinear),
                         sizes=sizes, batches=batches, backends=backends,
                         timing=TimingPlan(warmup=warmup, iters=iters, min_seconds=min_seconds), threads=threads,
                         device=device, transfers=not no_transfers, images=images, workdir=workdir, seed=seed,
                         ort_level=ort_opt_level, channels_last=channels_last)
    console = make_console()
    result = _run_with_progress(config, console)
    render(result, console)
    for path in write_reports(result, **paths):
        console.print(f"wrote {path}")
    failed = [f"{r['backend']} {'x'.join(map(str, r['shape']))}" for r in result.results
              if r["status"] == "ok" and r["parity_passed"] is False]
    if failed:
        console.print(f"[red]parity failed[/]: {', '.join(failed)}")
        if fail_on_parity:
            raise click.ClickException(f"{len(failed)} row(s) failed parity: {', '.join(failed)}")


def main():  # console script `unet-bench`
    bench_cmd(prog_name="unet-bench")


if __name__ == "__main__":
    main()
