"""Which settings move the eager-vs-ONNX Runtime comparison, on one shape (default: milesial width 64,
1x3x256x256), with equal threads.

Usage:
    python benchmarks/ablation.py [--arch milesial] [--width 64] [--size 256] [--batch 1] [--threads N]
                                  [--iters 20 | --min-seconds 3] [--rounds 2]
    python benchmarks/run_suite.py --ablation ...      # the same

Eager: the harness's TorchRunner (``torch.inference_mode``, NCHW), ``torch.no_grad``, channels-last
weights, channels-last weights and input. ONNX Runtime: the harness's OrtRunner (optimisation level
``all``), levels extended / basic / disable, memory arena off, intra-op spinning off, memory pattern
off (raw sessions, since OrtRunner exposes only the level and threads). Variants run interleaved for
``--rounds`` rounds and each reports the median of its per-round p50, so slow drift of the machine
hits all of them alike.
Writes ``ablation.json`` and ``ablation.md`` next to the suite's results for this machine.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch

from unetrt.bench import TimingPlan, default_threads, machine_info, measure
from unetrt.artifacts.refs import ONNX_FP32
from unetrt.bench.artifacts import ArtifactCache, ModelSource
from unetrt.bench.report import write_json, write_text_atomic
from unetrt.bench.results import BenchResult
from unetrt.models import create_model

RESULTS = Path(__file__).resolve().parent / "results"
EAGER_GRID, ORT_GRID = "eager: TorchRunner, inference_mode, NCHW (grid)", "ort: OrtRunner, level all (grid)"


def eager_variants(model, x: np.ndarray) -> dict:
    """name -> factory returning ``(step, close)``."""
    from unetrt.runtime import TorchRunner

    xt = torch.from_numpy(x)

    def runner():
        r = TorchRunner(model).activate()
        return (lambda: r.infer({"input": x})), r.deactivate

    def raw(context, module, inp):
        def step():
            with context():
                module(inp)
        return lambda: (step, lambda: None)

    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    return {EAGER_GRID: runner,
            "eager: no_grad, NCHW": raw(torch.no_grad, model, xt),
            "eager: inference_mode, channels_last weights": raw(torch.inference_mode, cl, xt),
            "eager: inference_mode, channels_last weights + input":
                raw(torch.inference_mode, cl, xt.contiguous(memory_format=torch.channels_last))}


def ort_variants(onnx_path: Path, x: np.ndarray, threads: int) -> dict:
    import onnxruntime as ort

    from unetrt.runtime import OrtRunner

    def runner():
        r = OrtRunner(onnx_path, threads=threads).activate()
        return (lambda: r.infer({"input": x})), r.deactivate

    def raw(level="ORT_ENABLE_ALL", arena=True, spinning=True, mem_pattern=True):
        def make():
            opts = ort.SessionOptions()
            opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
            opts.intra_op_num_threads = threads
            opts.enable_cpu_mem_arena = arena
            opts.enable_mem_pattern = mem_pattern
            if not spinning:
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
            return (lambda: sess.run(None, {"input": x})), lambda: None
        return make

    return {ORT_GRID: runner, "ort: level extended": raw("ORT_ENABLE_EXTENDED"),
            "ort: level basic": raw("ORT_ENABLE_BASIC"), "ort: level disable": raw("ORT_DISABLE_ALL"),
            "ort: level all, memory arena off": raw(arena=False),
            "ort: level all, intra-op spinning off": raw(spinning=False),
            "ort: level all, memory pattern off": raw(mem_pattern=False)}


def run(args) -> BenchResult:
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    source = ModelSource(args.arch, None, {"width": args.width})
    torch.manual_seed(args.seed)
    model = create_model(args.arch, width=args.width).eval()
    in_ch = model.config.get("in_channels", 3)
    shape = (args.batch, in_ch, args.size, args.size)
    cache = ArtifactCache(args.workdir, source, [shape], lambda m: print(m, file=sys.stderr))
    cache.use_weights_of(model)
    onnx = cache.prepare({ONNX_FP32})[ONNX_FP32]
    if isinstance(onnx, Exception):
        raise onnx
    x = np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32)
    variants = {**eager_variants(model, x), **ort_variants(onnx.path, x, threads)}
    plan = TimingPlan(warmup=args.warmup, iters=args.iters, min_seconds=args.min_seconds)
    p50s: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        for name, make in variants.items():
            step, close = make()
            try:
                stats = measure(step, plan, batch=shape[0])
            finally:
                close()
            p50s[name].append(stats.p50)
            print(f"round {round_ + 1}/{args.rounds} {name}: p50 {stats.p50:.1f} ms", file=sys.stderr)
    return _result(p50s, shape, threads, plan, args)


def _result(p50s: dict[str, list[float]], shape, threads: int, plan: TimingPlan, args) -> BenchResult:
    eager_p50 = float(np.median(p50s[EAGER_GRID]))
    rows = []
    for name, values in p50s.items():
        median = float(np.median(values))
        rows.append({"variant": name, "shape": list(shape), "p50_ms_per_round": [float(v) for v in values],
                     "p50_ms": median, "vs_eager_grid": median / eager_p50})
    config = {"arch": args.arch, "width": args.width, "threads": threads, "rounds": args.rounds,
              "timing": plan.to_dict(), "seed": args.seed}
    return BenchResult(machine_info(), config, rows)


def markdown(result: BenchResult) -> str:
    c, m = result.config, result.machine
    rows = {r["variant"]: r for r in result.results}
    best_eager = min((r for r in result.results if r["variant"].startswith("eager")), key=lambda r: r["p50_ms"])
    ort = rows[ORT_GRID]
    lines = [f"# Ablation: {c['arch']} width {c['width']}, {'x'.join(map(str, result.results[0]['shape']))}, "
             f"{c['threads']} threads", "",
             f"{m['cpu']} ({m['usable_cores']} usable cores); median p50 over {c['rounds']} interleaved round(s).", "",
             "| variant | p50 ms (median of rounds) | per round | x eager (grid setting) |", "|---|---|---|---|"]
    for r in result.results:
        rounds = ", ".join(f"{v:.1f}" for v in r["p50_ms_per_round"])
        lines.append(f"| {r['variant']} | {r['p50_ms']:.1f} | {rounds} | {r['vs_eager_grid']:.2f} |")
    lines += ["", f"ONNX Runtime (grid setting) / eager (grid setting): {ort['vs_eager_grid']:.2f}; "
              f"/ fastest eager setting ({best_eager['variant']}): {ort['p50_ms'] / best_eager['p50_ms']:.2f}.",
              "The grid compares the runners' defaults (TorchRunner: inference_mode, NCHW; OrtRunner: level all, "
              "arena and spinning on) at equal thread counts; the rows above say how much each setting moves it."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="milesial")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--min-seconds", type=float, default=None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=str(RESULTS.parent / ".cache"))
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    result = run(args)
    out = Path(args.out) / result.machine["slug"]
    write_json(result, out / "ablation.json")
    write_text_atomic(out / "ablation.md", markdown(result))
    print(markdown(result))
    print(f"wrote {out / 'ablation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
