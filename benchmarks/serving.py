"""Serving overhead: Triton (python backend running the unetrt ORT runner) over HTTP and gRPC, with
dynamic batching on and off, beside the same runner in process, at several client concurrencies.

Usage:
    python benchmarks/serving.py [--export DIR] [--size 128] [--concurrency 1,2,4,8] [--requests 20]
                                 [--threads N] [--queue-delay-us 100] [--rounds 3] [--out benchmarks/results]

Without ``--export`` the shipped demo model (milesial width 8, 3 classes) is exported to a temporary
directory. Every request is ``1x3xSIZExSIZE`` float32 (equal shapes, so the dynamic batcher can merge
them). One model instance on the server; in process, one runner shared by the client threads (its
``infer`` is serialised, like one instance). Both use ``--threads`` ONNX Runtime intra-op threads.
Writes ``serving.json`` and ``serving.md`` under ``<out>/<machine slug>/``.

With ``--buckets 128,256`` it measures shape buckets instead: PNG images of mixed sizes (H and W drawn
uniformly from ``--mixed-sizes LO,HI``) posted to the ``unet_image`` ensemble by ``--concurrency`` clients,
against a repository written with ``--shape-buckets`` and one without, interleaved over the rounds, with the
mean batch the model saw and how far the bucketed masks agree with the un-bucketed ones. Writes
``serving_buckets.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from unetrt.bench import default_threads, machine_info
from unetrt.bench.report import write_text_atomic
from unetrt.runtime import load
from unetrt.serve.client import TritonClient
from unetrt.serve.loadtest import run_load, runner_infer, triton_infer
from unetrt.serve.repository import write_repository
from unetrt.serve.server import TritonServer

RESULTS = Path(__file__).resolve().parent / "results"


def demo_export(root: Path) -> Path:
    from unetrt.assets import demo_checkpoint
    from unetrt.exporter import ExportConfig, export

    out = root / "demo"
    export(ExportConfig(arch="milesial", model_kwargs={"num_classes": 3, "width": 8}, checkpoint=str(demo_checkpoint()),
                        output_dir=str(out), verify=False, engine=False))
    return out


def batch_stats(url: str, model: str) -> tuple[int, int]:
    """``(inference_count, execution_count)`` of a model (their ratio is the mean batch formed)."""
    with TritonClient(url) as client:
        stats = client.statistics(model)
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def start_server(export: Path, work: Path, args, batching: bool) -> TritonServer:
    repo = work / f"repo-{'on' if batching else 'off'}"
    write_repository(export, repo, name="unet", dynamic_batching=batching, max_queue_delay_us=args.queue_delay_us,
                     threads=args.threads, max_batch=8, force=True)
    return TritonServer(repo).start()


def measure_rounds(paths: dict, inputs, args) -> list[dict]:
    """Every path at every level, interleaved, ``args.rounds`` times; medians over the rounds."""
    runs: dict[tuple[str, int], list[dict]] = {}
    for _ in range(args.rounds):
        for c in args.levels:
            for label, (make, close, stats_url) in paths.items():
                before = batch_stats(stats_url, "unet") if stats_url else None
                r = run_load(make, inputs, concurrency=c, requests_per_worker=args.requests, close=close,
                             label=label).to_dict()
                if stats_url:
                    after = batch_stats(stats_url, "unet")
                    n, e = after[0] - before[0], after[1] - before[1]
                    r["mean_batch"] = round(n / e, 3) if e else None
                runs.setdefault((label, c), []).append(r)
    rows = []
    for (label, c), rs in runs.items():
        med = {k: round(float(np.median([r["latency_ms"][k] for r in rs])), 3) for k in ("p50", "p90", "p99", "mean")}
        batches = [r.get("mean_batch") for r in rs if r.get("mean_batch")]
        rows.append({"label": label.split(" ")[0], "dynamic_batching": None if label == "in-process" else
                     label.endswith("on"), "concurrency": c, "rounds": len(rs),
                     "requests": sum(r["requests"] for r in rs), "errors": sum(r["errors"] for r in rs),
                     "throughput_rps": round(float(np.median([r["throughput_rps"] for r in rs])), 3),
                     "latency_ms": med, "mean_batch": round(float(np.median(batches)), 3) if batches else None,
                     "per_round_p50_ms": [r["latency_ms"]["p50"] for r in rs]})
    return rows


def markdown(data: dict) -> str:
    m = data["machine"]
    cfg = data["config"]
    lines = [f"# Serving overhead on {m['cpu']} ({m['usable_cores']} usable cores, no GPU)", "",
             f"Model: {cfg['model']}; requests 1x3x{cfg['size']}x{cfg['size']} float32, {cfg['requests']} per "
             f"client thread (+2 warm-up) per round, {cfg['rounds']} rounds with every path interleaved, medians "
             f"over the rounds; ONNX Runtime {cfg['threads']} intra-op thread(s) on both sides; one server model "
             f"instance, dynamic batching queue delay {cfg['queue_delay_us']} us when on. Ratios are against the "
             "in-process runner at the same concurrency, measured in the same run. The machine is shared: load "
             f"average {cfg['load_average_before']} before, {cfg['load_average_after']} after the run.", "",
             "| path | batching | clients | req/s | p50 ms | p90 ms | p99 ms | errors | mean batch | p50 / in-process "
             "| in-process req/s / req/s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = {r["concurrency"]: r for r in data["results"] if r["label"] == "in-process"}
    for r in data["results"]:
        b = base[r["concurrency"]]
        lat = r["latency_ms"]
        ratio = lat["p50"] / b["latency_ms"]["p50"]
        thr = b["throughput_rps"] / r["throughput_rps"] if r["throughput_rps"] else float("nan")
        batching = "-" if r["label"] == "in-process" else ("on" if r["dynamic_batching"] else "off")
        lines.append(f"| {r['label']} | {batching} | {r['concurrency']} | {r['throughput_rps']:.1f} | {lat['p50']:.2f} "
                     f"| {lat['p90']:.2f} | {lat['p99']:.2f} | {r['errors']} | {r.get('mean_batch') or '-'} "
                     f"| {ratio:.2f} | {thr:.2f} |")
    lines += ["", "Triton's dynamic batcher merges only requests of equal shape; with mixed sizes the mean batch "
              "stays 1.", ""]
    return "\n".join(lines)


def mixed_images(lo: int, hi: int, n: int = 32) -> list[np.ndarray]:
    """``n`` PNG files (as UINT8 [1, bytes] arrays) of demo-like content, H and W uniform in [lo, hi]."""
    import io

    from PIL import Image

    from unetrt.data.synthetic import make_sample

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(lo, hi + 1, 2))
        image = make_sample(rng, h, w)[0]
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        out.append(np.frombuffer(buf.getvalue(), np.uint8)[None])
    return out


def image_infer(url: str):
    """``(make_infer, close)`` posting image bytes to ``unet_image`` (one connection per thread)."""
    def make():
        client = TritonClient(url)

        def infer(x: np.ndarray) -> np.ndarray:
            return client.infer("unet_image", {"IMAGE": x}, ["MASK"])["MASK"]

        infer.client = client
        return infer

    return make, lambda infer: infer.client.close()


def buckets_main(args) -> None:
    """Mixed-size image traffic through the ensemble, with and without ``--shape-buckets``."""
    import io

    from PIL import Image

    lo, hi = (int(v) for v in args.mixed_sizes.split(","))
    images = mixed_images(lo, hi)
    c = args.levels[-1]
    load_before = [round(v, 2) for v in os.getloadavg()]
    runs: dict[str, list[dict]] = {}
    masks: dict[str, dict[int, bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="unetrt-buckets-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        export = args.export or demo_export(work)
        urls = {}
        for label, buckets in (("no buckets", None), (f"buckets {args.buckets}", args.buckets)):
            repo = work / label.replace(" ", "-")
            write_repository(export, repo, name="unet", with_preprocess=True, shape_buckets=buckets, max_batch=8,
                             max_queue_delay_us=args.queue_delay_us, threads=args.threads, force=True)
            server = TritonServer(repo).start()
            stack.callback(server.stop)
            urls[label] = server.http_url
        for _ in range(args.rounds):
            for label, url in urls.items():
                make, close = image_infer(url)
                before = batch_stats(url, "unet")
                r = run_load(make, images, concurrency=c, requests_per_worker=args.requests, close=close, label=label,
                             collect=True)
                after = batch_stats(url, "unet")
                n, e = after[0] - before[0], after[1] - before[1]
                row = r.to_dict()
                row["mean_batch"] = round(n / e, 3) if e else None
                runs.setdefault(label, []).append(row)
                masks.setdefault(label, {}).update({k: bytes(y.tobytes()) for k, y in r.outputs})
    load_after = [round(v, 2) for v in os.getloadavg()]
    plain, bucketed = masks["no buckets"], masks[f"buckets {args.buckets}"]
    same = [k for k in plain if k in bucketed]
    decode = lambda b: np.asarray(Image.open(io.BytesIO(b)))  # noqa: E731
    agreement = [float((decode(plain[k]) == decode(bucketed[k])).mean()) for k in same]
    rows = [{"label": label, "concurrency": c, "rounds": len(rs), "requests": sum(r["requests"] for r in rs),
             "errors": sum(r["errors"] for r in rs),
             "throughput_rps": round(float(np.median([r["throughput_rps"] for r in rs])), 3),
             "latency_ms": {k: round(float(np.median([r["latency_ms"][k] for r in rs])), 3)
                            for k in ("p50", "p90", "p99", "mean")},
             "mean_batch": round(float(np.median([r["mean_batch"] for r in rs if r["mean_batch"]])), 3)}
            for label, rs in runs.items()]
    info = machine_info()
    data = {"machine": info, "config": {"model": "demo milesial width 8, 3 classes" if args.export is None
                                        else str(args.export), "sizes": [lo, hi], "images": len(images),
                                        "buckets": args.buckets, "clients": c, "requests": args.requests,
                                        "rounds": args.rounds, "threads": args.threads,
                                        "queue_delay_us": args.queue_delay_us, "load_average_before": load_before,
                                        "load_average_after": load_after},
            "results": rows, "speedup": round(rows[1]["throughput_rps"] / rows[0]["throughput_rps"], 3),
            "masks": {"compared": len(same), "identical": sum(a == 1.0 for a in agreement),
                      "min_pixel_agreement": round(min(agreement), 5) if agreement else None,
                      "mean_pixel_agreement": round(float(np.mean(agreement)), 5) if agreement else None}}
    folder = args.out / info["slug"]
    write_text_atomic(folder / "serving_buckets.json", json.dumps(data, indent=2) + "\n")
    write_text_atomic(folder / "serving_buckets.md", buckets_markdown(data))
    print(buckets_markdown(data))


def buckets_markdown(data: dict) -> str:
    m, cfg, mk = data["machine"], data["config"], data["masks"]
    lines = [f"# Shape buckets: mixed-size images through unet_image on {m['cpu']} ({m['usable_cores']} usable "
             "cores, no GPU)", "",
             f"Model: {cfg['model']}; {cfg['images']} PNG images, H and W uniform in "
             f"{cfg['sizes'][0]}..{cfg['sizes'][1]}; {cfg['clients']} client threads x {cfg['requests']} requests "
             f"(+2 warm-up) per round, {cfg['rounds']} rounds interleaved, medians; one instance per model, max batch "
             f"8, queue delay {cfg['queue_delay_us']} us, ONNX Runtime {cfg['threads']} thread(s). The machine is shared with other work: load average "
             f"{cfg['load_average_before']} before, {cfg['load_average_after']} after.", "",
             "| repository | req/s | p50 ms | p90 ms | p99 ms | errors | mean batch |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in data["results"]:
        lat = r["latency_ms"]
        lines.append(f"| {r['label']} | {r['throughput_rps']:.1f} | {lat['p50']:.1f} | {lat['p90']:.1f} | "
                     f"{lat['p99']:.1f} | {r['errors']} | {r['mean_batch']} |")
    lines += ["", f"Throughput with buckets / without: **{data['speedup']:.2f}x**.", "",
              f"Masks: {mk['compared']} images compared, {mk['identical']} identical masks, pixel "
              f"agreement min {mk['min_pixel_agreement']}, mean {mk['mean_pixel_agreement']} (padding to a bucket "
              "changes the context beyond the aligned border).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, default=None)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--queue-delay-us", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--buckets", default=None, help="measure shape buckets (e.g. 128,256) instead")
    parser.add_argument("--mixed-sizes", default="96,256", help="LO,HI of the mixed image sizes (--buckets)")
    args = parser.parse_args()
    args.levels = [int(c) for c in args.concurrency.split(",")]
    args.threads = args.threads or default_threads()
    if args.buckets:
        return buckets_main(args)
    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="unetrt-serving-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        export = args.export or demo_export(work)
        inputs = [np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)]
        runner = stack.enter_context(load(export, backend="ort", device="cpu", threads=args.threads))
        paths = {"in-process": (runner_infer(runner), None, None)}
        for batching in (True, False):
            server = start_server(export, work, args, batching)
            stack.callback(server.stop)
            for url in (server.http_url, server.grpc_url):
                make, close = triton_infer(url, "unet")
                paths[f"triton-{url.split(':')[0]} {'on' if batching else 'off'}"] = (make, close, server.http_url)
        rows = measure_rounds(paths, inputs, args)
    load_after = [round(v, 2) for v in os.getloadavg()]
    info = machine_info()
    data = {"machine": info, "config": {"model": "demo milesial width 8, 3 classes" if args.export is None
                                        else str(args.export), "size": args.size, "requests": args.requests,
                                        "threads": args.threads, "queue_delay_us": args.queue_delay_us,
                                        "concurrency": args.levels, "rounds": args.rounds,
                                        "load_average_before": load_before, "load_average_after": load_after,
                                        "server": "tritonserver 2.51.0 (nvidia-pytriton), "
                                        "python backend, 1 instance, KIND_CPU"},
            "results": rows}
    folder = args.out / info["slug"]
    write_text_atomic(folder / "serving.json", json.dumps(data, indent=2) + "\n")
    write_text_atomic(folder / "serving.md", markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
