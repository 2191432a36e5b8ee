"""Dataset segmentation end to end vs the model alone, on the same images and threads; Ray local vs in process.

Usage:
    python benchmarks/predict_stream.py [--images 256] [--size 512] [--rounds 2] [--ray] [--out benchmarks/results]

The shipped demo model (milesial width 8, 3 classes) is exported to ONNX in a temporary directory and
``--images`` synthetic RGB PNGs of ``SIZE x SIZE`` are written beside it. Measured, interleaved over
``--rounds`` rounds (median reported):

- **model only**: ``runner.infer`` over the preprocessed images in batches of 4 (ONNX Runtime, default
  threads) - the floor any pipeline can reach;
- **unet-predict**: the command a user runs (``unet-predict -m EXP -i DIR -o OUT/ --force``), wall time of
  the whole process, imports and model load included;
- **one image**: ``unet-predict`` on one image, wall time;
- with ``--ray``: the same images as a Ray Data job (what ``unet-predict --ray`` runs) on a local Ray of 2
  CPUs that is already up (a cluster is), 2 actors of 1 ONNX Runtime thread each, actor start-up included,
  beside :func:`~unetrt.runtime.stream.predict_many` in process on the same 2 cores (model loaded).

Efficiency = model-only seconds / unet-predict seconds. Writes ``predict_stream.{json,md}`` under
``<out>/<machine slug>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from unetrt.bench import machine_info
from unetrt.bench.report import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent


def demo_export(root: Path) -> Path:
    from unetrt.assets import demo_checkpoint
    from unetrt.exporter import ExportConfig, export

    out = root / "demo"
    export(ExportConfig(arch="milesial", model_kwargs={"num_classes": 3, "width": 8}, checkpoint=str(demo_checkpoint()),
                        output_dir=str(out), verify=False, engine=False))
    return out


def write_images(folder: Path, n: int, size: int) -> list[Path]:
    from PIL import Image

    from unetrt.data.synthetic import make_sample

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        image, _ = make_sample(rng, size, size)
        paths.append(folder / f"img_{i:04d}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


def model_only(export: Path, paths: list[Path], batch: int = 4) -> float:
    """Seconds of ``runner.infer`` alone over every image (decoded and preprocessed beforehand)."""
    from unetrt.runtime import load
    from unetrt.runtime.transforms import load_image, preprocess

    with load(export, backend="ort") as runner:
        name = next(iter(runner.input_constraints))
        xs = [preprocess(load_image(p, 3), 1.0, 3) for p in paths]
        runner.infer({name: np.concatenate(xs[:batch])})  # warm-up
        t = time.perf_counter()
        for i in range(0, len(xs), batch):
            runner.infer({name: np.concatenate(xs[i:i + batch])})
        return time.perf_counter() - t


def in_process(export: Path, paths: list[Path], out: Path) -> float:
    """Seconds of :func:`unetrt.runtime.stream.predict_many` (the pipeline behind unet-predict), model loaded."""
    from unetrt.runtime import load
    from unetrt.runtime.stream import predict_many

    out.mkdir()
    with load(export, backend="ort") as runner:
        t = time.perf_counter()
        predict_many(runner, paths, [out / f"{p.stem}_OUT.png" for p in paths], batch=4)
        elapsed = time.perf_counter() - t
    shutil.rmtree(out)
    return elapsed


def ray_job(export: Path, paths: list[Path], out: Path, actors: int = 2) -> float:
    """Seconds of the same images as a Ray Data job on a local Ray that is already up (actors start inside)."""
    import ray

    from unetrt.runtime.ray_predict import ImageJob, RayOptions, predict_with_ray

    out.mkdir()
    t = time.perf_counter()
    predict_with_ray(paths, [out / f"{p.stem}_OUT.png" for p in paths], ImageJob(model=str(export)),
                     RayOptions(concurrency=actors, batch_size=4, num_cpus=1))
    elapsed = time.perf_counter() - t
    assert len(list(out.iterdir())) == len(paths), "the Ray job lost outputs"
    shutil.rmtree(out)
    assert ray.is_initialized()
    return elapsed


def command(args: list[str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ray", action="store_true", help="Also time --ray with 2 local actors.")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    machine = machine_info()
    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        export = demo_export(root)
        paths = write_images(root / "images", args.images, args.size)
        predict = [str(BIN / "unet-predict"), "-m", str(export), "--force", "--batch", "4"]
        runs: dict[str, list[float]] = {}
        if args.ray:
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        for _ in range(args.rounds):
            runs.setdefault("model_only", []).append(model_only(export, paths))
            out = root / "out"
            runs.setdefault("unet_predict", []).append(command([*predict, "-i", str(root / "images"), "-o", f"{out}/"]))
            shutil.rmtree(out)
            runs.setdefault("one_image", []).append(command([*predict, "-i", str(paths[0]), "-o", str(root / "one.png")]))
            if args.ray:
                runs.setdefault("in_process", []).append(in_process(export, paths, out))
                runs.setdefault("ray_2_actors", []).append(ray_job(export, paths, out))
    med = {k: float(np.median(v)) for k, v in runs.items()}
    n = args.images
    result = {
        "machine": machine, "images": n, "size": args.size, "rounds": args.rounds, "batch": 4,
        "seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "images_per_s": {k: round(n / med[k], 2) for k in med if k != "one_image"},
        "efficiency": round(med["model_only"] / med["unet_predict"], 3),
        "one_image_s": round(med["one_image"], 3),
        "load_average_before": load_before, "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    if "ray_2_actors" in med:
        result["ray_vs_in_process"] = round(med["in_process"] / med["ray_2_actors"], 3)
    folder = args.out / machine["slug"]
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "predict_stream.json", json.dumps(result, indent=2) + "\n")
    lines = [f"# unet-predict over a dataset vs the model alone ({machine['cpu']}, {machine['usable_cores']} cores)", "",
             f"Demo model (milesial width 8, 3 classes), ONNX Runtime CPU, {n} synthetic RGB PNGs of "
             f"{args.size}x{args.size}, batch 4, median of {args.rounds} interleaved rounds. The machine was shared "
             f"with other work: load average {result['load_average_before']} before, "
             f"{result['load_average_after']} after.", "",
             "| what | seconds | images/s |", "|---|---|---|"]
    for k in med:
        lines.append(f"| {k.replace('_', ' ')} | {med[k]:.2f} | " + (f"{n / med[k]:.1f} |" if k != "one_image" else "1 image |"))
    lines += ["", f"End-to-end efficiency (model-only s / unet-predict s): **{result['efficiency']}**.",
              f"One-image `unet-predict` wall: **{result['one_image_s']} s**."]
    if "ray_vs_in_process" in result:
        lines.append(f"Ray Data job (local Ray of 2 CPUs already up; 2 actors x 1 ONNX Runtime thread, actor start "
                     f"included) vs `predict_many` in process (2 threads, model loaded): "
                     f"**{result['ray_vs_in_process']}x** the throughput.")
    write_text_atomic(folder / "predict_stream.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
