"""The benchmark suite: the zoo on this machine, written to benchmarks/results/<machine-slug>/.

Usage:
    python benchmarks/run_suite.py                      # every zoo variant, sizes 256,512, batch 1,4
    python benchmarks/run_suite.py --quick              # 256x256, batch 1, 5 iterations
    python benchmarks/run_suite.py --archs milesial --sizes 256 --batch 1 --backends eager,ort
    python benchmarks/run_suite.py --ablation           # which ORT / eager settings matter (see ablation.py)

Per variant it writes <arch>.json / .csv / .md / .png; then suite.json and README.md (one line per
variant, and the CPU target: ONNX Runtime FP32 p50 <= 0.7 x eager p50 for milesial width 64 at
1x3x256x256, batch 1, equal threads). Every backend is requested: those this machine cannot run
appear as "skipped" rows. Sizes a variant cannot take are moved up to its nearest admissible size.
Run it on a quiet machine: timings are only as good as the idle cores they get.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from unetrt.bench import BACKENDS, BenchConfig, TimingPlan, machine_info, run_grid, write_reports  # noqa: E402
from unetrt.bench.inputs import check_sizes, parse_batches, parse_sizes  # noqa: E402
from unetrt.bench.report import write_json, write_text_atomic  # noqa: E402
from unetrt.bench.results import BenchResult  # noqa: E402
from unetrt.errors import UnetrtError  # noqa: E402
from unetrt.models import create_model, get_spec, list_models  # noqa: E402

TARGET = {"arch": "milesial", "width": 64, "shape": [1, 3, 256, 256], "ratio": 0.7}
RESULTS = Path(__file__).resolve().parent / "results"


def admissible_sizes(arch: str, kwargs: dict, sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each requested size, or the nearest larger one the variant accepts (valid-conv UNets)."""
    import torch

    spec = get_spec(arch)
    with torch.device("meta"):
        model = create_model(arch, **kwargs)
    out = []
    for h, w in sizes:
        for dh in range(0, 64):
            try:
                check_sizes([(h + dh, w + dh)], name=arch, min_size=spec.min_size, alignment=spec.alignment,
                            model=model)
            except UnetrtError:
                continue
            out.append((h + dh, w + dh))
            break
        else:
            raise UnetrtError(f"no admissible size near {h}x{w} for {arch}", spec.notes, "choose other --sizes")
    return list(dict.fromkeys(out))


def target_check(result: BenchResult) -> dict | None:
    """ORT p50 / eager p50 at the target shape, when the result holds both rows."""
    cfg = result.config.get("model") or {}
    if cfg.get("arch") != TARGET["arch"] or (cfg.get("kwargs") or {}).get("width") != TARGET["width"]:
        return None
    p50 = {r["backend"]: r["latency_ms"]["p50"] for r in result.results
           if r["shape"] == TARGET["shape"] and r["status"] == "ok" and r["backend"] in ("eager", "ort")}
    if len(p50) < 2:
        return None
    ratio = p50["ort"] / p50["eager"]
    return {"eager_p50_ms": p50["eager"], "ort_p50_ms": p50["ort"], "ratio": ratio, "target": TARGET["ratio"],
            "met": ratio <= TARGET["ratio"], "threads": result.config.get("threads")}


def _summary_line(arch: str, result: BenchResult | None, error: str | None) -> str:
    if result is None:
        return f"| {arch} | - | - | - | - | error: {error} |"
    ok = [r for r in result.results if r["status"] == "ok"]
    first = min(ok, key=lambda r: (r["batch"], r["height"] * r["width"]), default=None)
    if first is None:
        return f"| {arch} | - | - | - | - | no backend ran |"
    same = [r for r in ok if r["shape"] == first["shape"]]
    eager = next((r for r in same if r["backend"] == "eager"), None)
    best = min(same, key=lambda r: r["latency_ms"]["p50"])
    bad = sorted({r["backend"] + (" (failed to run)" if r["status"].startswith("failed") else "")
                  for r in result.results
                  if r["parity_passed"] is False or r["status"].startswith("failed")})
    parity = "all pass" if result.all_passed else "FAIL: " + ", ".join(bad)
    eager_txt = f"{eager['latency_ms']['p50']:.1f}" if eager else "-"
    speed = f"{best['speedup_vs_eager']:.2f}x" if best.get("speedup_vs_eager") else "-"
    return (f"| {arch} | {'x'.join(map(str, first['shape']))} | {eager_txt} | {best['backend']} "
            f"{best['latency_ms']['p50']:.1f} | {speed} | {parity} |")


def _readme(machine: dict, lines: list[str], target: dict | None, args) -> str:
    text = [f"# Benchmarks on {machine['cpu']} ({machine['usable_cores']} usable cores"
            f"{', GPU ' + machine['gpu']['name'] if machine.get('gpu') else ', no GPU'})", "",
            f"Recorded {time.strftime('%Y-%m-%d %H:%M')} by `python benchmarks/run_suite.py {' '.join(args)}`. "
            "Per variant: `<arch>.md` (table), `.json`, `.csv`, `.png`. Latencies in ms (p50).", "",
            "| variant | smallest shape | eager p50 | fastest backend p50 | speedup | parity |",
            "|---|---|---|---|---|---|", *lines, ""]
    if target:
        text += [f"Target (milesial width 64, 1x3x256x256, batch 1, {target['threads']} threads): ONNX Runtime "
                 f"FP32 p50 {target['ort_p50_ms']:.1f} ms vs eager {target['eager_p50_ms']:.1f} ms = "
                 f"{target['ratio']:.2f} x eager (target <= {target['target']}): "
                 f"{'met' if target['met'] else 'NOT met'}.", ""]
    return "\n".join(text)


def run_suite(args: argparse.Namespace, argv: list[str]) -> Path:
    machine = machine_info()
    out = Path(args.out) / machine["slug"]
    out.mkdir(parents=True, exist_ok=True)
    sizes, batches = parse_sizes(args.sizes), parse_batches(args.batch)
    timing = TimingPlan(warmup=args.warmup, iters=args.iters, min_seconds=args.min_seconds)
    lines, results, target = [], {}, None
    for arch in args.archs.split(","):
        kwargs = {"width": args.width} if args.width else {}
        started = time.perf_counter()
        try:
            config = BenchConfig(arch=arch, model_kwargs=kwargs, sizes=admissible_sizes(arch, kwargs, sizes),
                                 batches=batches, backends=args.backends, timing=timing, threads=args.threads,
                                 workdir=args.workdir, seed=args.seed)
            result = run_grid(config, lambda msg, done, total: print(f"  [{arch} {done}/{total}] {msg}",
                                                                     file=sys.stderr))
        except UnetrtError as exc:
            print(f"{arch}: {exc}", file=sys.stderr)
            lines.append(_summary_line(arch, None, str(exc)))
            continue
        write_reports(result, json_path=out / f"{arch}.json", csv_path=out / f"{arch}.csv",
                      markdown_path=out / f"{arch}.md", plot_path=out / f"{arch}.png" if args.plots else None)
        results[arch] = result.to_dict()
        target = target or target_check(result)
        lines.append(_summary_line(arch, result, None))
        print(f"{arch}: done in {time.perf_counter() - started:.0f}s -> {out / (arch + '.md')}", file=sys.stderr)
    suite = BenchResult(machine, {"argv": argv, "target": target, "archs": list(results)},
                        [row for r in results.values() for row in r["results"]])
    write_json(suite, out / "suite.json")
    write_text_atomic(out / "README.md", _readme(machine, lines, target, argv))
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", default=",".join(list_models()), help="comma-separated zoo variants")
    ap.add_argument("--width", type=int, default=None, help="base width (default: each variant's own)")
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--batch", default="1,4")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="default: all (unavailable ones are skipped)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--min-seconds", type=float, default=None)
    ap.add_argument("--threads", type=int, default=None, help="default: every usable core")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=str(RESULTS.parent / ".cache"), help="artifact cache")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNGs (no matplotlib)")
    ap.add_argument("--quick", action="store_true", help="256x256, batch 1, 5 iterations")
    ap.add_argument("--ablation", action="store_true",
                    help="run benchmarks/ablation.py with the remaining arguments instead (see its --help)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.batch, args.iters, args.min_seconds = "256", "1", args.iters or 5, None
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--ablation" in argv:
        import ablation

        return ablation.main([a for a in argv if a != "--ablation"])
    args = parse_args(argv)
    try:
        out = run_suite(args, argv)
    except UnetrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
