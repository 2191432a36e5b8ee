"""INT8 on this machine: ONNX Runtime INT8 latency vs eager FP32, INT8 mask agreement, INT8 engine size.

Three measurements, written to ``results/<machine-slug>/int8.{json,md}``:

1. Latency (``unetrt.bench``, the engine of ``unet-bench``): milesial width 64, random weights,
   1x3x256x256, batch 1, equal threads, backends eager / ort / ort-int8 (TensorRT form) / ort-int8-cpu
   (uint8 form). The grid runs ``--rounds`` times; each round's p50s are ratios to that round's eager p50
   (side by side in one run), and the median ratio over rounds is reported with every round's value.
2. Accuracy on the trained demo model (milesial width 8, 3 classes), exported like ``make demo``
   (``--int8 --int8-cpu --calib-images unetrt/assets/samples``): per sample image, the share of mask
   pixels of each INT8 form that equal the eager FP32 mask (``unet-predict``'s pipeline end to end).
3. Engine size: TensorRT-RTX (CPU-only build) FP32 vs INT8 plans of milesial width 64.

Usage: ``python benchmarks/int8.py [--rounds 3] [--min-seconds 4] [--threads 2] [--skip-engines]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unetrt.bench import BenchConfig, TimingPlan, machine_info, run_grid  # noqa: E402
from unetrt.bench.report import write_text_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ASSETS = Path(__file__).resolve().parents[1] / "unetrt" / "assets"
BACKENDS = ("eager", "ort", "ort-int8", "ort-int8-cpu")


def latency(args) -> dict:
    """Per round: p50 of each backend and its ratio to eager FP32 in that round."""
    rounds = []
    for k in range(args.rounds):
        load_before = os.getloadavg()[0]
        result = run_grid(BenchConfig(arch="milesial", model_kwargs={"width": 64}, sizes="256", batches="1",
                                      backends=",".join(BACKENDS), threads=args.threads, device="cpu",
                                      workdir=args.workdir, timing=TimingPlan(warmup=3, min_seconds=args.min_seconds)))
        rows = {r["backend"]: r for r in result.results if r["status"] == "ok"}
        eager, ort = rows["eager"]["latency_ms"]["p50"], rows["ort"]["latency_ms"]["p50"]
        rounds.append({name: {"p50_ms": round(r["latency_ms"]["p50"], 2),
                              "ratio_to_eager": round(r["latency_ms"]["p50"] / eager, 3),
                              "ratio_to_ort_fp32": round(r["latency_ms"]["p50"] / ort, 3),
                              "argmax_agreement": r.get("argmax_agreement"), "parity_passed": r.get("parity_passed")}
                       for name, r in rows.items()})
        rounds[-1]["load_average_1min"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
        print(f"round {k + 1}: " + ", ".join(f"{n} {rounds[-1][n]['ratio_to_eager']:.3f}" for n in BACKENDS)
              + f" (load {rounds[-1]['load_average_1min']})")
    median = {n: round(statistics.median(r[n]["ratio_to_eager"] for r in rounds), 3) for n in BACKENDS}
    median_ort = {n: round(statistics.median(r[n]["ratio_to_ort_fp32"] for r in rounds), 3) for n in BACKENDS}
    return {"model": "milesial width 64, random weights", "shape": [1, 3, 256, 256], "threads": args.threads,
            "backends": list(BACKENDS), "rounds": rounds, "median_ratio_to_eager": median,
            "median_ratio_to_ort_fp32": median_ort,
            "note": "INT8 parity rows use the INT8 bars; random weights and random inputs give near-tied logits, "
                    "so their agreement says little about accuracy (see the demo model)"}


def demo_accuracy(workdir: Path) -> dict:
    """Mask agreement of INT8 vs eager FP32 on the demo model's sample images (predict pipeline)."""
    from PIL import Image

    from unetrt.exporter import ExportConfig, export
    from unetrt.runtime import load
    from unetrt.runtime.predict import predict

    out = workdir / "demo"
    manifest = export(ExportConfig(arch="milesial", checkpoint=str(ASSETS / "milesial_demo.pth"),
                                   model_kwargs={"num_classes": 3, "width": 8}, output_dir=str(out), force=True,
                                   verify=False, engine=False, int8=True, int8_cpu=True,
                                   calib_images=str(ASSETS / "samples"))).manifest
    samples = sorted(p for p in (ASSETS / "samples").glob("*.png") if not p.stem.endswith("_mask"))
    images = {p.name: np.asarray(Image.open(p).convert("RGB")) for p in samples}
    masks = {}
    for backend in ("eager", "ort", "ort-int8", "ort-int8-cpu"):
        with load(out, backend=backend, device="cpu") as runner:
            masks[backend] = {n: predict(runner, img).mask for n, img in images.items()}
    agreement = {b: {n: round(float(np.mean(masks[b][n] == masks["eager"][n])), 5) for n in images}
                 for b in ("ort", "ort-int8", "ort-int8-cpu")}
    return {"model": "trained demo milesial width 8, 3 classes", "calibration": manifest.int8.calibration,
            "kept_float": manifest.int8.kept_float, "mask_agreement_vs_eager_fp32": agreement,
            "min_mask_agreement": {b: min(v.values()) for b, v in agreement.items()},
            "export_evaluation": [{k: e[k] for k in ("input", "argmax_agreement", "mean_dice", "mean_iou", "max_abs")}
                                  for e in manifest.int8.evaluation]}


def engine_sizes(workdir: Path) -> dict:
    """FP32 vs INT8 TensorRT-RTX plan sizes of milesial width 64 (built on the CPU)."""
    from unetrt.exporter import ExportConfig, export

    m = export(ExportConfig(arch="milesial", model_kwargs={"width": 64}, output_dir=str(workdir / "w64"), force=True,
                            verify=False, int8=True, calib_count=4, int8_min_argmax=0.0, int8_min_dice=0.0,
                            engine=True)).manifest
    sizes = {e.precision: e.size_bytes for e in m.engines}
    flavour = {e.precision: f"{e.flavour} {e.version}" for e in m.engines}
    return {"model": "milesial width 64", "bytes": sizes, "flavour": flavour["int8"],
            "ratio_int8_to_fp32": round(sizes["int8"] / sizes["fp32"], 3)}


def markdown(data: dict) -> str:
    lat, demo, eng = data["latency"], data.get("demo"), data.get("engines")
    lines = [f"# INT8 on {data['machine'].get('cpu') or 'this machine'} ({data['machine'].get('slug')})", "",
             f"ONNX Runtime CPU latency, {lat['model']}, 1x3x256x256, batch 1, {lat['threads']} threads: p50 as a "
             f"ratio to eager FP32 p50 in the same round (median of {len(lat['rounds'])} rounds; each round "
             "below).", "",
             "| backend | median ratio to eager | median ratio to ort FP32 | "
             + " | ".join(f"round {i + 1}" for i in range(len(lat["rounds"]))) + " |",
             "|---|---|---|" + "---|" * len(lat["rounds"])]
    for name, ratio in lat["median_ratio_to_eager"].items():
        per_round = " | ".join(f"{r[name]['ratio_to_eager']:.3f}" for r in lat["rounds"])
        lines.append(f"| {name} | {ratio:.3f} | {lat['median_ratio_to_ort_fp32'][name]:.3f} | {per_round} |")
    lines.append("| 1-min load average (before/after) | | | " + " | ".join(
        f"{r['load_average_1min']['before']}/{r['load_average_1min']['after']}" for r in lat["rounds"]) + " |")
    if demo:
        lines += _demo_lines(demo)
    if eng:
        lines += ["", f"Engine size ({eng['flavour']}, built CPU-only), {eng['model']}: INT8 "
                      f"{eng['bytes']['int8'] / 1e6:.1f} MB vs FP32 {eng['bytes']['fp32'] / 1e6:.1f} MB = "
                      f"{eng['ratio_int8_to_fp32']:.2f}x."]
    return "\n".join(lines) + "\n"


def _demo_lines(demo: dict) -> list[str]:
    lines = ["", f"Mask agreement with eager FP32 on the demo model's samples ({demo['model']}; calibrated on the "
                  f"same samples, {len(demo['kept_float'])} node(s) kept float):", "",
              "| backend | " + " | ".join(demo["mask_agreement_vs_eager_fp32"]["ort"]) + " |",
              "|---|" + "---|" * len(demo["mask_agreement_vs_eager_fp32"]["ort"])]
    for b, per in demo["mask_agreement_vs_eager_fp32"].items():
        lines.append(f"| {b} | " + " | ".join(f"{v:.2%}" for v in per.values()) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=str(Path(__file__).resolve().parent / ".cache"))
    parser.add_argument("--skip-engines", action="store_true")
    parser.add_argument("--latency-only", action="store_true", help="Skip the demo accuracy and engine sizes.")
    parser.add_argument("--name", default="int8", help="Output file stem (int8 -> int8.json, int8.md).")
    args = parser.parse_args(argv)
    machine = machine_info()
    out = RESULTS / machine.get("slug", "local")
    with tempfile.TemporaryDirectory(prefix="unetrt-int8-bench-") as tmp:
        data = {"machine": machine, "argv": sys.argv[1:], "latency": latency(args)}
        if not args.latency_only:
            data["demo"] = demo_accuracy(Path(tmp))
        if not (args.skip_engines or args.latency_only):
            data["engines"] = engine_sizes(Path(tmp))
    write_json_data(data, out / f"{args.name}.json")
    write_text_atomic(out / f"{args.name}.md", markdown(data))
    print(markdown(data))
    return 0


def write_json_data(data: dict, path: Path) -> None:
    import json

    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
