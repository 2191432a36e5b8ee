"""Command line: ``unetrt`` (group) and ``unet-export`` (its export command as a script).

Commands are thin: they parse options into the public API's values and render results.
``UnetrtError`` becomes one clean error line and exit code 1; other exceptions keep their
traceback.
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from .cli_options import (ALIGN, Shape, build_profiles, engine_options, fp16_options, handle_errors,
                          merge_model_kwargs, model_options)
from .errors import UnetrtError

DEFAULT_ARCH = "milesial"
err_console = Console(stderr=True)


def _parity_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("input", "output", "max abs", "mean abs", "rel. range", "argmax", "ok"):
        table.add_column(col, justify="right")
    for r in rows:
        out = "x".join(map(str, r["output_shape"])) if r.get("output_shape") else "-"
        table.add_row("x".join(map(str, r["input_shape"])), out, f"{r.get('max_abs', float('nan')):.2e}",
                      f"{r.get('mean_abs', float('nan')):.2e}", f"{r.get('rel_to_range', float('nan')):.2e}",
                      f"{r.get('argmax_agreement', 0):.2%}", "[green]yes[/]" if r["passed"] else "[red]NO[/]")
    return table


def _summary(manifest: dict, out_dir) -> dict:
    inp, onnx = manifest["input"], manifest["onnx"]
    return {
        "output_dir": str(out_dir),
        "model": manifest["model"],
        "artifacts": manifest["artifacts"],
        "input": inp,
        "output": manifest["output"],
        "onnx": {k: onnx[k] for k in ("path", "sha256", "opset", "nodes", "pads_removed", "simplify")},
        "notes": manifest["export"]["notes"],
        "seconds": manifest["export"]["seconds"],
        "verification": {k: manifest["verification"][k] for k in ("performed", "passed", "sizes")},
        "fp16": _fp16_summary(manifest.get("fp16")),
        "engines": manifest.get("engines", []),
    }


def _fp16_summary(fp16: dict | None) -> dict | None:
    if not fp16:
        return None
    keep = ("path", "sha256", "converter", "keep_io_types", "kept_fp32", "node_count", "calibration")
    return {**{k: fp16.get(k) for k in keep}, "verification": fp16["verification"]}


def _render(manifest: dict, out_dir) -> None:
    inp, onnx = manifest["input"], manifest["onnx"]
    name = manifest["model"]["arch"] or manifest["model"]["factory"]
    err_console.print(f"[bold]{name}[/] → {out_dir}  ({manifest['model']['params']:,} params)")
    dyn = [k for k, v in inp["dynamic"].items() if v]
    sizes = (f"H, W multiples of {inp['alignment']}" if inp["alignment"] > 1 else "any H, W") + \
        (f" ≥ {inp['min_size']}" if inp["min_size"] else "")
    err_console.print(f"  input  {inp['name']} [N,{inp['channels']},H,W] dynamic: {', '.join(dyn) or 'none'}; "
                      f"{sizes if dyn else 'static ' + 'x'.join(map(str, inp['static_shape']))}")
    if inp.get("pad_to_alignment"):
        err_console.print(f"  runtime pads inputs to multiples of {inp['alignment']} and crops outputs back")
    simp = onnx.get("simplify")
    simp_txt = f", onnxsim {simp['nodes_before']}→{simp['nodes_after']} nodes" if simp and simp["applied"] else ""
    err_console.print(f"  onnx   {onnx['path']} opset {onnx['opset']}, {onnx['nodes']} nodes{simp_txt}, "
                      f"{onnx['pads_removed']} no-op Pad removed, sha256 {onnx['sha256'][:12]}…")
    for note in manifest["export"]["notes"]:
        err_console.print(f"  note   {note}")
    rows = manifest["verification"]["sizes"]
    if rows:
        err_console.print(_parity_table(rows, "Parity: ONNX Runtime CPU vs eager PyTorch (fp32)"))
    else:
        err_console.print("  parity verification skipped (--no-verify)")
    fp16 = manifest.get("fp16")
    if fp16:
        kept = fp16["kept_fp32"]
        err_console.print(f"  fp16   {fp16['path']} ({fp16['converter']}; I/O "
                          f"{'fp32' if fp16['keep_io_types'] else 'fp16'}; {len(kept)} node(s) kept FP32"
                          + (": " + ", ".join(f"{k['node']} ({k['op']}: {k['reason']})" for k in kept[:4])
                             if kept else "") + ")")
        err_console.print(_parity_table(fp16["verification"]["sizes"], "Parity: FP16 ONNX (ONNX Runtime CPU) vs "
                                        "eager PyTorch fp32"))
        err_console.print(f"  note   {fp16['verification']['note']}")
    for eng in manifest.get("engines", []):
        prof = "; ".join(f"{n}: {'x'.join(map(str, p['min']))} / {'x'.join(map(str, p['opt']))} / "
                         f"{'x'.join(map(str, p['max']))}" for pr in eng["profiles"] for n, p in pr.items())
        err_console.print(f"  engine {eng['path']} {eng['precision']} from {eng['onnx']}, {eng['flavour']} "
                          f"{eng['version']}, {eng['size_bytes'] / 2**20:.1f} MiB, built in "
                          f"{eng['build_seconds']:.1f}s; profile min/opt/max {prof}")
    secs = manifest["export"]["seconds"]
    err_console.print("  time   " + ", ".join(f"{k} {v:.1f}s" for k, v in secs.items()))


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
@engine_options
@click.option("--force", is_flag=True, help="Replace artifacts in a non-empty output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@handle_errors
def export_cmd(arch, factory, model_kwargs_json, checkpoint, in_channels, classes, width, bilinear, output, opset,
               static, shape, align, no_simplify, no_verify, atol, fp16, fp16_io, fp16_atol, fp16_argmax,
               calib_images, engine, trt, min_shape, opt_shape, max_shape, workspace, builder_opt_level,
               timing_cache, compute_capability, version_compatible, force, as_json):
    """Export a UNet to ONNX (dynamic N/H/W, verified against eager PyTorch), optionally FP16 and a
    TensorRT engine."""
    from .exporter import ExportConfig, export
    from .exporter.stages import EngineOptions

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
        calib_images=calib_images, engine=engine,
        engine_options=EngineOptions(
            flavour=trt, profiles=build_profiles(min_shape, opt_shape, max_shape),
            workspace_bytes=workspace * 2**20 if workspace else None, optimization_level=builder_opt_level,
            timing_cache=timing_cache, compute_capabilities=list(compute_capability) or None,
            version_compatible=version_compatible))
    with err_console.status("exporting…") as status:
        result = export(config, progress=lambda msg: status.update(msg + "…"))
    _render(result.manifest, result.output_dir)
    if as_json:
        click.echo(json.dumps(_summary(result.manifest, result.output_dir), indent=2))


# click passes --model-kwargs as `model_kwargs`; rename to avoid shadowing the helper above.
for _p in export_cmd.params:
    if _p.name == "model_kwargs":
        _p.name = "model_kwargs_json"


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
@handle_errors
def models_cmd(as_json):
    """List the zoo variants with parameters, alignment and geometry."""
    import torch

    from .models import create_model, get_spec, list_models

    rows = []
    for name in list_models():
        spec = get_spec(name)
        with torch.device("meta"):
            params = sum(p.numel() for p in create_model(name).parameters())
        rows.append({**spec.to_dict(), "params": params})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="unetrt zoo (default kwargs)", title_justify="left")
    for col in ("name", "params", "in/classes/width", "alignment", "min size", "geometry"):
        table.add_column(col)
    for r in rows:
        d = r["defaults"]
        table.add_row(r["name"], f"{r['params'] / 1e6:.2f}M",
                      f"{d.get('in_channels')}/{d.get('num_classes')}/{d.get('width')}",
                      str(r["alignment"]), str(r["min_size"]), r["geometry"])
    Console().print(table)


@click.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@handle_errors
def inspect_cmd(path, as_json):
    """What unetrt knows about an exported .onnx, .engine or export directory."""
    from .exporter.inspect import describe

    info = describe(path)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    con = Console()
    con.print(f"[bold]{info['path']}[/]  manifest: {info['manifest'] or 'none beside it'}")
    if "manifest_match" in info:
        con.print("  sha256 matches the manifest" if info["manifest_match"] else
                  "  [red]sha256 does NOT match the manifest: the file changed since export[/]")
    if info.get("model"):
        m = info["model"]
        con.print(f"  model  {m.get('arch') or m.get('factory')} {m.get('kwargs')} ({m.get('params'):,} params)")
    if info.get("input"):
        i = info["input"]
        con.print(f"  input  {i['name']} C={i['channels']} alignment {i['alignment']} min size {i['min_size']} "
                  f"dynamic {[k for k, v in i['dynamic'].items() if v]}")
    for key in ("onnx", "engine", "fp16", "verification", "layers"):
        if info.get(key) is not None:
            con.print(f"  {key}", info[key])
    for a in info.get("artifacts", []):
        con.print(f"  artifact {a}")


@click.group()
@click.version_option(package_name="unetrt")
def main():
    """unetrt: UNet models from PyTorch to ONNX, FP16 and TensorRT."""


main.add_command(export_cmd)
main.add_command(models_cmd)
main.add_command(inspect_cmd)


def _predict_cmd():
    from .runtime.cli import predict_cmd

    return predict_cmd


def _bench_cmd():
    from .bench.cli import bench_cmd

    return bench_cmd


def predict_main():  # console script `unet-predict`
    _predict_cmd()(prog_name="unet-predict")


def export_main():  # console script `unet-export`
    export_cmd(prog_name="unet-export")


main.add_command(_predict_cmd())
main.add_command(_bench_cmd())


if __name__ == "__main__":
    sys.exit(main())
