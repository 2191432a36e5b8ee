"""``unetrt build`` and ``unetrt refit``: make an export's TensorRT plans fit the machine that runs them."""

from __future__ import annotations

import click

from .options import handle_errors


@click.command("build")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--trt", "flavour", type=click.Choice(["auto", "tensorrt", "tensorrt-rtx"]), default="auto",
              show_default=True, help="TensorRT flavour (auto: each plan's own when installed, else the one here).")
@click.option("--precision", multiple=True, type=click.Choice(["fp32", "fp16", "int8"]),
              help="Rebuild only these engines (repeat; default: every engine in the manifest).")
@click.option("--compute-capability", multiple=True, metavar="SMxx",
              help="TensorRT-RTX targets instead of the recorded ones (repeat).")
@handle_errors
def build_cmd(export_dir, flavour, precision, compute_capability):
    """Rebuild EXPORT_DIR's TensorRT engines here, from its ONNX files, with the profiles, precision and
    options its manifest records. The export is changed only when every build succeeded. EXPORT_DIR may
    also be a Triton repository written with `unetrt triton --build-on-start`: its plans are built here
    (run it in the serving image, e.g. as a Kubernetes init container, so they match its TensorRT)."""
    from ..errors import UnetrtError
    from ..exporter.rebuild import rebuild_engines
    from ..serve.build_on_start import build_repository_plans, is_repository

    if is_repository(export_dir):
        if precision or compute_capability:
            raise UnetrtError("--precision/--compute-capability given for a Triton repository",
                              "no selection: the repository lists the plans to build", "drop those options")
        for item in build_repository_plans(export_dir, flavour=flavour):
            click.echo(f"built {item['plan']}: {item['flavour']} {item['version']} in {item['seconds']:.1f} s")
        return

    done = rebuild_engines(export_dir, flavour=flavour, precisions=list(precision) or None,
                           compute_capabilities=list(compute_capability) or None)
    for r in done:
        e = r.entry
        notes = f" ({'; '.join(r.notes)})" if r.notes else ""
        click.echo(f"built {e.path}: {e.precision}, {e.flavour} {e.version}, {e.size_bytes / 2**20:.1f} MiB in "
                   f"{e.build_seconds:.1f} s{notes}")


@click.command("refit")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--device", type=click.IntRange(min=0), default=0, show_default=True, help="CUDA device index.")
@handle_errors
def refit_cmd(export_dir, device):
    """Write full plans for EXPORT_DIR's weight-stripped engines, refitted from its ONNX weights (needs the
    GPU and the TensorRT that built them)."""
    from ..runtime.refit import refit_engines

    for name in refit_engines(export_dir, device=device):
        click.echo(f"refitted {name}: full plan written, manifest updated")
