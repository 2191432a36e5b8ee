"""Console rendering of export results (rich tables) and the ``--json`` summary."""

from __future__ import annotations

import dataclasses

from rich.console import Console
from rich.table import Table

from ..artifacts.manifest import Int8Section, Manifest
from .options import make_console


def summary(written: Manifest, out_dir) -> dict:
    """The ``--json`` summary of an export (plain JSON values)."""
    manifest = written.to_dict()
    inp, onnx = manifest["input"], manifest["onnx"]
    return {
        "output_dir": str(out_dir),
        "model": manifest["model"],
        "weights": manifest["model"].get("weights"),
        "artifacts": manifest["artifacts"],
        "input": inp,
        "output": manifest["output"],
        "onnx": {k: onnx[k] for k in ("path", "sha256", "opset", "nodes", "pads_removed", "simplify")},
        "notes": manifest["export"]["notes"],
        "seconds": manifest["export"]["seconds"],
        "verification": {k: manifest["verification"][k] for k in ("performed", "passed", "sizes")},
        "fp16": _fp16_summary(manifest.get("fp16")),
        "int8": _int8_summary(manifest.get("int8")),
        "engines": manifest.get("engines", []),
    }


def _fp16_summary(fp16: dict | None) -> dict | None:
    if not fp16:
        return None
    keep = ("path", "sha256", "converter", "keep_io_types", "kept_fp32", "node_count", "calibration")
    return {**{k: fp16.get(k) for k in keep}, "verification": fp16["verification"]}


def _int8_summary(int8: dict | None) -> dict | None:
    if not int8:
        return None
    keep = ("path", "sha256", "runtime", "quantizer", "method", "form", "quantized_nodes", "kept_float",
            "evaluation", "structure", "bars", "calibration")
    cpu = int8.get("cpu")
    return {**{k: int8.get(k) for k in keep}, "cpu": {k: cpu[k] for k in ("path", "sha256", "form", "evaluation")}
            if cpu else None}


def _render_int8(int8: Int8Section, err_console: Console) -> None:
    """The INT8 lines: file, quantizer, kept-float nodes, accuracy per evaluation input, CPU form."""
    kept, evals = int8.kept_float, int8.evaluation
    err_console.print(f"  int8   {int8.path} ({int8.quantizer}, {int8.method} calibration on "
                      f"{len(int8.calibration.get('inputs', []))} input(s), {int8.calibration.get('source')}); "
                      f"{int8.quantized_nodes} node(s) INT8, {len(kept)} kept float"
                      + (": " + ", ".join(f"{k['node']} ({k['op']}: {k['reason']})" for k in kept[:4]) if kept
                         else ""))
    table = Table(title=f"Accuracy: INT8 ONNX (ONNX Runtime CPU) vs eager PyTorch fp32 — bars argmax ≥ "
                        f"{int8.bars['min_argmax_agreement']:g}, mean Dice ≥ {int8.bars['min_mean_dice']:g}",
                  title_justify="left")
    for col in ("input", "shape", "argmax", "mean Dice", "mean IoU", "max abs", "mean abs", "ok"):
        table.add_column(col, justify="right")
    for e in evals:
        table.add_row(e["input"], e["input_shape"], f"{e['argmax_agreement']:.2%}", f"{e['mean_dice']:.4f}",
                      f"{e['mean_iou']:.4f}", f"{e['max_abs']:.2e}", f"{e['mean_abs']:.2e}",
                      "[green]yes[/]" if e["passed"] else "[red]NO[/]")
    err_console.print(table)
    err_console.print(f"  note   accuracy measured on {int8.calibration.get('evaluated_on')}")
    if int8.cpu:
        worst = min(e["argmax_agreement"] for e in int8.cpu.evaluation)
        err_console.print(f"  int8   {int8.cpu.path} for ONNX Runtime CPU ({int8.cpu.form}); worst argmax {worst:.2%}")


def render_export(manifest: Manifest, out_dir, console: Console | None = None) -> None:
    """Print what an export wrote: model, input contract, ONNX, parity tables, FP16, engines, timings."""
    from ..exporter.verify import parity_table  # torch-bound: only once an export has run

    err_console = console or make_console()
    inp, onnx, model, export = manifest.input, manifest.onnx, manifest.model, manifest.export
    err_console.print(f"[bold]{model.arch or model.factory}[/] → {out_dir}  ({model.params:,} params)")
    dyn = [k for k, v in dataclasses.asdict(inp.dynamic).items() if v]
    axes = "D,H,W" if inp.spatial_dims == 3 else "H,W"
    sizes = (f"{axes.replace(',', ', ')} multiples of {inp.alignment}" if inp.alignment > 1 else f"any {axes}") + \
        (f" ≥ {inp.min_size}" if inp.min_size else "")
    err_console.print(f"  input  {inp.name} [N,{inp.channels},{axes}] dynamic: {', '.join(dyn) or 'none'}; "
                      f"{sizes if dyn else 'static ' + 'x'.join(map(str, inp.static_shape or []))}")
    if inp.pad_to_alignment:
        err_console.print(f"  runtime pads inputs to multiples of {inp.alignment} and crops outputs back")
        if not any(n.startswith("alignment ") for n in export.notes):
            from ..exporter.preflight import alignment_cost

            err_console.print(f"  cost   {alignment_cost(inp.alignment, spatial_dims=inp.spatial_dims)}")
    if model.weights == "random-init":
        err_console.print("  [yellow]weights random-init: no --checkpoint was given, so the masks mean nothing; "
                          "pass --checkpoint PATH to export trained weights[/]")
    elif model.checkpoint:
        err_console.print(f"  weights {model.checkpoint.path}")
    simp = onnx.simplify
    simp_txt = f", onnxsim {simp['nodes_before']}→{simp['nodes_after']} nodes" if simp and simp["applied"] else ""
    err_console.print(f"  onnx   {onnx.path} opset {onnx.opset}, {onnx.nodes} nodes{simp_txt}, "
                      f"{onnx.pads_removed} no-op Pad removed, sha256 {onnx.sha256[:12]}…")
    for note in export.notes:
        err_console.print(f"  note   {note}")
    if manifest.verification.sizes:
        err_console.print(parity_table(manifest.verification.sizes, "Parity: ONNX Runtime CPU vs eager PyTorch "
                                       "(fp32)", markup=True))
    else:
        err_console.print("  parity verification skipped (--no-verify)")
    fp16 = manifest.fp16
    if fp16:
        kept = fp16.kept_fp32
        err_console.print(f"  fp16   {fp16.path} ({fp16.converter}; I/O "
                          f"{'fp32' if fp16.keep_io_types else 'fp16'}; {len(kept)} node(s) kept FP32"
                          + (": " + ", ".join(f"{k['node']} ({k['op']}: {k['reason']})" for k in kept[:4])
                             if kept else "") + ")")
        if fp16.verification:
            err_console.print(parity_table(fp16.verification.sizes, "Parity: FP16 ONNX (ONNX Runtime CPU) vs "
                                           "eager PyTorch fp32", markup=True))
            err_console.print(f"  note   {fp16.verification.note}")
    if manifest.int8:
        _render_int8(manifest.int8, err_console)
    for eng in manifest.engines:
        prof = "; ".join(f"{n}: {'x'.join(map(str, p['min']))} / {'x'.join(map(str, p['opt']))} / "
                         f"{'x'.join(map(str, p['max']))}" for pr in eng.profiles for n, p in pr.items())
        err_console.print(f"  engine {eng.path} {eng.precision} from {eng.onnx}, {eng.flavour} "
                          f"{eng.version}, {eng.size_bytes / 2**20:.1f} MiB, built in "
                          f"{eng.build_seconds:.1f}s; profile min/opt/max {prof}"
                          + (f"; {eng.int8_mode}" if eng.int8_mode else ""))
    err_console.print("  time   " + ", ".join(f"{k} {v:.1f}s" for k, v in export.seconds.items()))
