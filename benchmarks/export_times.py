"""Export time per zoo variant (export + simplify + verify) on this machine.

Usage: python benchmarks/export_times.py [--width 64] [--archs a,b] [--fp16] [--out benchmarks/results]
Writes <out>/<machine>/export_times[_fp16].json and .md. An engine is built whenever a TensorRT
flavour imports (TensorRT-RTX builds on the CPU), as unet-export does by default.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import tempfile
import time
from pathlib import Path

import torch

from unetrt.exporter import ExportConfig, export
from unetrt.exporter.manifest import tool_versions, write_json_atomic
from unetrt.models import list_models


def machine() -> dict:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": torch.get_num_threads(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "slug": re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-")
            + f"-{torch.get_num_threads()}c"}


def _opt(seconds: dict, key: str) -> str:
    return f"{seconds[key]:.1f}s" if key in seconds else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=None, help="base width (default: each variant's own)")
    ap.add_argument("--archs", default=",".join(list_models()))
    ap.add_argument("--fp16", action="store_true", help="export with --fp16 (FP16 ONNX, FP16 engine)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    info = machine()
    rows = []
    for arch in args.archs.split(","):
        kwargs = {"width": args.width} if args.width else {}
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            m = export(ExportConfig(arch=arch, model_kwargs=kwargs, output_dir=tmp + "/o", fp16=args.fp16)).manifest
            wall = time.perf_counter() - t
        rows.append({"arch": arch, "params": m["model"]["params"], "width": m["model"]["kwargs"].get("width"),
                     "alignment": m["input"]["alignment"], "min_size": m["input"]["min_size"],
                     "onnx_nodes": m["onnx"]["nodes"], "sizes_verified": len(m["verification"]["sizes"]),
                     "worst_max_abs": max(r["max_abs"] for r in m["verification"]["sizes"]),
                     "seconds": m["export"]["seconds"], "wall_seconds": round(wall, 2)})
        print(json.dumps(rows[-1]))
    out = Path(args.out) / info["slug"]
    out.mkdir(parents=True, exist_ok=True)
    name = "export_times_fp16" if args.fp16 else "export_times"
    write_json_atomic(out / f"{name}.json", {"machine": info, "tools": tool_versions(), "fp16": args.fp16,
                                             "results": rows})
    lines = [f"Export times on {info['cpu']} ({info['cores']} threads), torch {torch.__version__}"
             f"{', with --fp16' if args.fp16 else ''}.", "",
             "| variant | params | align | min size | ONNX nodes | trace | convert | simplify | verify (sizes) "
             "| fp16 | engine | total |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["seconds"]
        lines.append(f"| {r['arch']} | {r['params'] / 1e6:.2f}M | {r['alignment']} | {r['min_size']} | "
                     f"{r['onnx_nodes']} | {s['trace']:.1f}s | {s['convert']:.1f}s | {s['simplify']:.1f}s | "
                     f"{s.get('verify', 0):.1f}s ({r['sizes_verified']}) | {_opt(s, 'fp16')} | "
                     f"{_opt(s, 'engine')} | {s['total']:.1f}s |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
