"""unetrt's nnU-Net predictor (ONNX Runtime FP32 and INT8) vs nnU-Net's own ``nnUNetPredictor`` on the CPU.

Usage:
    python benchmarks/nnunet.py [--configuration 3d_fullres|2d] [--threads 2] [--rounds 2] [--out benchmarks/results]

A synthetic results folder is written in nnU-Net's format (PlainConvUNet, random He-initialised weights,
``--features`` per stage, ``--patch`` patch size, 1 fold, CT normalization, mirroring over every axis,
anisotropic target spacing) and exported with ``unet-export --nnunet`` (FP32 ONNX + INT8 ONNX for
ONNX Runtime's CPU kernels). One synthetic case (``--shape``, spacing different from the target so it is
resampled there and back) is predicted, rounds interleaved, median wall time reported, by:

- **nnUNetPredictor**: nnunetv2's predictor on the CPU, ``torch.set_num_threads(threads)``, tile step 0.5,
  Gaussian, mirroring (``predict_single_npy_array``, the model loaded beforehand);
- **unetrt ORT FP32** / **unetrt ORT INT8**: :class:`~unetrt.nnunet.predict.NnunetPredictor` over ONNX
  Runtime with ``threads`` intra-op threads (sessions created beforehand), batched tiles x mirrors.

Agreement = share of voxels with the same label as nnUNetPredictor's; ``max |p|`` = largest softmax
difference. INT8 calibration: for ``2d``, preprocessed patches of another case (``--calib-images`` with
``.npy`` network inputs); for 3-D the export's calibration reads 4-D inputs only, so it calibrates on
random inputs and says so. Writes ``nnunet-<configuration>.{json,md}`` under ``<out>/<machine slug>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from unetrt.bench import machine_info
from unetrt.bench.report import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def build(root: Path, args) -> tuple[Path, Path, object]:
    from unetrt.exporter.config import ExportConfig
    from unetrt.nnunet.export import export_nnunet
    from unetrt.nnunet.synthetic import PLAIN, SyntheticCase, synthetic_case, write_results_folder

    three_d = args.configuration != "2d"
    case = SyntheticCase(configuration=args.configuration, arch=PLAIN, features=args.features, folds=(0,),
                         patch_size=args.patch, spacing=[2.0, 0.8, 0.8] if three_d else [0.8, 0.8],
                         mirror_axes=(0, 1, 2) if three_d else (0, 1))
    results = write_results_folder(root / "results", case)
    calib = None
    if not three_d:  # network inputs of another case, preprocessed the way the predictor feeds them
        from unetrt.nnunet.export import nnunet_section
        from unetrt.nnunet.preprocess import pad_to, preprocess
        from unetrt.nnunet.results import read_results

        section = nnunet_section(read_results(results), 0, "checkpoint_final.pth")
        data = preprocess(synthetic_case(tuple(args.shape), seed=99), args.spacing, section).data
        padded, _ = pad_to(data, [1, *args.patch])
        calib = root / "calib"
        calib.mkdir()
        rng = np.random.default_rng(0)
        for i in range(16):
            z = rng.integers(0, padded.shape[1])
            y, x = (rng.integers(0, s - p + 1) for s, p in zip(padded.shape[2:], args.patch))
            np.save(calib / f"patch_{i:02d}.npy", padded[None, :, z, y:y + args.patch[0], x:x + args.patch[1]])
    export_nnunet(results, root / "export", base=ExportConfig(engine=False, verify=False, int8=True, int8_cpu=True,
                                                              calib_images=str(calib) if calib else None))
    return results, root / "export", case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configuration", default="3d_fullres", choices=["3d_fullres", "2d"])
    parser.add_argument("--features", type=lambda s: [int(v) for v in s.split(",")], default=[8, 16, 32, 64])
    parser.add_argument("--patch", type=lambda s: [int(v) for v in s.split(",")], default=None)
    parser.add_argument("--shape", type=lambda s: [int(v) for v in s.split(",")], default=[40, 112, 112])
    parser.add_argument("--spacing", type=lambda s: [float(v) for v in s.split(",")], default=[2.5, 0.9, 0.9])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.patch = args.patch or ([32, 64, 64] if args.configuration != "2d" else [128, 128])

    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from unetrt.nnunet.predict import NnunetPredictor
    from unetrt.nnunet.synthetic import synthetic_case

    torch.set_num_threads(args.threads)
    machine = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        results, export, case = build(Path(tmp), args)
        export_s = time.perf_counter() - t0
        image = synthetic_case(tuple(args.shape), seed=1)
        ref = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                              perform_everything_on_device=False, device=torch.device("cpu"), verbose=False,
                              verbose_preprocessing=False, allow_tqdm=False)
        ref.initialize_from_trained_model_folder(str(results), use_folds=(0,))
        ours = {p: NnunetPredictor.from_export(export, "ort", "cpu", precision=p, threads=args.threads, batch_size=8)
                for p in ("fp32", "int8")}
        for p in ours.values():
            p.__enter__()
        notes = sorted({n for p in ours.values() for r in p.runners for n in r.notes})
        times: dict[str, list[float]] = {"nnUNetPredictor": [], "unetrt ORT FP32": [], "unetrt ORT INT8": []}
        outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        loads = []
        for _ in range(args.rounds):
            loads.append(round(os.getloadavg()[0], 2))
            start = time.perf_counter()
            seg, probs = ref.predict_single_npy_array(image.copy(), {"spacing": args.spacing}, None, None, True)
            times["nnUNetPredictor"].append(time.perf_counter() - start)
            outputs["nnUNetPredictor"] = (np.asarray(seg), np.asarray(probs, np.float32))
            for label, p in (("unetrt ORT FP32", ours["fp32"]), ("unetrt ORT INT8", ours["int8"])):
                start = time.perf_counter()
                outputs[label] = p.predict(image, args.spacing, probabilities=True)
                times[label].append(time.perf_counter() - start)
        for p in ours.values():
            p.__exit__(None, None, None)
    ref_seg, ref_probs = outputs["nnUNetPredictor"]
    base = statistics.median(times["nnUNetPredictor"])
    rows = []
    for label, ts in times.items():
        seg, probs = outputs[label]
        rows.append({"predictor": label, "median_s": round(statistics.median(ts), 3),
                     "runs_s": [round(t, 3) for t in ts],
                     "speedup_vs_nnunet": round(base / statistics.median(ts), 2),
                     "voxel_agreement": round(float((seg == ref_seg).mean()), 6),
                     "max_abs_prob": round(float(np.abs(probs - ref_probs).max()), 6)})
    result = {"benchmark": "nnunet", "machine": machine, "configuration": args.configuration,
              "features": args.features, "patch_size": args.patch, "case_shape": args.shape,
              "case_spacing": args.spacing, "target_spacing": case.spacing, "threads": args.threads,
              "rounds": args.rounds, "mirror_axes": list(case.mirror_axes), "export_seconds": round(export_s, 1),
              "int8_calibration": "preprocessed patches of another case" if args.configuration == "2d"
              else "random inputs (the export's calibration reads 4-D inputs only)", "runner_notes": notes,
              "load_average_1min_per_round": loads, "rows": rows,
              "recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    folder = args.out / machine["slug"]
    name = f"nnunet-{args.configuration}"
    write_text_atomic(folder / f"{name}.json", json.dumps(result, indent=2) + "\n")
    lines = [f"# nnU-Net predictor: unetrt vs nnUNetPredictor ({args.configuration}, {machine['cpu']}, "
             f"{args.threads} threads)", "",
             f"Recorded {result['recorded']} by `python benchmarks/nnunet.py --configuration {args.configuration} "
             f"--threads {args.threads} --rounds {args.rounds}`. The machine ({machine['cpu']}, "
             f"{machine['usable_cores']} usable cores, no GPU) was shared with other work while this ran, so "
             "absolute times are noisy (1-min load average at the start of each round: "
             f"{', '.join(map(str, loads))}); eager PyTorch suffers more from a loaded machine than ONNX Runtime "
             "(see benchmarks/README.md), so the speed-up is not a quiet-machine figure.", "",
             f"PlainConvUNet features {args.features}, patch {args.patch}, random weights, 1 fold, mirroring over "
             f"{list(case.mirror_axes)}; case {args.shape} at spacing {args.spacing} (target {case.spacing}). "
             f"INT8 calibration: {result['int8_calibration']}.", "",
             "| predictor | median s | runs s | speed-up vs nnUNetPredictor | voxel agreement | max abs prob |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['predictor']} | {r['median_s']} | {', '.join(map(str, r['runs_s']))} | "
              f"{r['speedup_vs_nnunet']}x | {r['voxel_agreement']} | {r['max_abs_prob']} |" for r in rows]
    write_text_atomic(folder / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
