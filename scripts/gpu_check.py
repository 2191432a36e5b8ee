"""GPU acceptance check: what to run first on a machine with an NVIDIA GPU (``make gpu-check``).

1. The environment: GPU, compute capability, driver-visible CUDA, installed TensorRT flavours, ONNX
   Runtime providers.
2. The ``gpu`` tests (``pytest -m gpu``), counted from their JUnit XML.
3. Per installed TensorRT flavour: export a small milesial UNet (FP32 + FP16 ONNX), build FP32 (TF32 off)
   and FP16 engines, check where they may run (the rule ``load()`` uses), run them (plain and with CUDA
   graphs) and compare with eager PyTorch on the same GPU (TF32 off) at the FP32 / FP16 bars.
4. A short benchmark (``unet-bench``, with and without host<->device copies).

Writes ``OUT/report.json`` and ``OUT/report.md``; exits 1 if a check failed, 0 otherwise. Each phase has
its own time limit so the whole run stays under 10 minutes.

Usage: ``python scripts/gpu_check.py --out gpu-check [--skip-tests] [--skip-bench]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"tests": 300, "bench": 150}


def environment() -> dict[str, Any]:
    import onnxruntime
    import torch

    from unetrt.runtime.engine_choice import installed_flavours, probe_gpu_cc

    env: dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__,
                           "cuda_available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda,
                           "onnxruntime": onnxruntime.__version__,
                           "ort_providers": onnxruntime.get_available_providers(),
                           "tensorrt": installed_flavours()}
    cc = probe_gpu_cc()
    if cc is not None:
        env.update(gpu=torch.cuda.get_device_name(0), compute_capability=f"{cc[0]}.{cc[1]}",
                   memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return env


def gpu_tests(out: Path) -> dict[str, Any]:
    xml = out / "gpu-tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
           "tests"]
    start = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=LIMITS["tests"])
        code, tail = res.returncode, (res.stdout + res.stderr)[-4000:]
    except subprocess.TimeoutExpired as exc:
        code, tail = -1, f"timed out after {LIMITS['tests']} s: {str(exc.stdout or '')[-2000:]}"
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if xml.is_file():
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in counts}
    failed = counts["failures"] + counts["errors"]
    return {"ok": code in (0, 5) and failed == 0, "returncode": code, **counts,
            "seconds": round(time.perf_counter() - start, 1), "output_tail": tail}


def _export(flavour: str, out: Path, fp16: bool) -> tuple[Any, Path]:
    import torch

    from unetrt.artifacts.profiles import ShapeProfile
    from unetrt.exporter import ExportConfig, export
    from unetrt.exporter.steps import EngineOptions
    from unetrt.models import create_model

    torch.manual_seed(0)
    model = create_model("milesial", width=8, num_classes=3).eval()
    ckpt = out / f"{flavour}-weights.pth"
    torch.save(model.state_dict(), ckpt)
    folder = out / f"export-{flavour}-{'fp16' if fp16 else 'fp32'}"  # the pipeline builds one engine precision
    profile = ShapeProfile((1, 3, 32, 32), (1, 3, 128, 128), (2, 3, 256, 256))
    export(ExportConfig(arch="milesial", model_kwargs={"width": 8, "num_classes": 3}, checkpoint=str(ckpt),
                        output_dir=str(folder), fp16=fp16, engine=True, force=True, verify=False,
                        engine_options=EngineOptions(flavour=flavour, profiles=[{"input": profile}])))
    return model, folder


def smoke(flavour: str, out: Path) -> dict[str, Any]:
    """Export, build, choose, run and compare one flavour; every step's outcome is recorded."""
    import numpy as np
    import torch

    from unetrt.artifacts.manifest import Manifest
    from unetrt.parity import FP16_TOLERANCE, FP32_TOLERANCE, compare
    from unetrt.runtime import TrtRunner, load
    from unetrt.runtime.engine_choice import engine_unusable_reason, installed_flavours, probe_gpu_cc

    result: dict[str, Any] = {"flavour": flavour, "ok": False, "engines": []}
    start = time.perf_counter()
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        x = np.random.default_rng(0).random((2, 3, 96, 160), dtype=np.float32)
        ok = True
        exports = [_export(flavour, out, fp16) for fp16 in (False, True)]
        with torch.no_grad():
            ref = exports[0][0].cuda()(torch.from_numpy(x).cuda()).cpu().numpy()
        entries = [(folder, Manifest.read(folder), e) for _, folder in exports for e in Manifest.read(folder).engines]
        for folder, manifest, entry in entries:
            row: dict[str, Any] = {"path": entry.path, "precision": entry.precision, "version": entry.version,
                                   "tf32": entry.tf32, "compute_capabilities": entry.compute_capabilities}
            why = engine_unusable_reason(entry, folder, gpu_cc=probe_gpu_cc(),
                                         installed=installed_flavours())
            chosen = load(folder, precision=entry.precision)  # what a user's load() picks here, and why
            row.update(load_chose=chosen.path.name, load_notes=chosen.notes[:4])
            if why:  # e.g. an RTX plan on SM90: load() falls back to the ONNX, which is the expected outcome
                row.update(status="not runnable here (load() falls back to ONNX)", reason=why)
                result["engines"].append(row)
                continue
            tolerance = FP16_TOLERANCE if entry.precision == "fp16" else FP32_TOLERANCE
            for graph in (False, True):
                with TrtRunner(folder / entry.path, cuda_graph=graph, manifest=manifest) as runner:
                    got = runner.infer({"input": x})["logits"]
                    parity = compare(ref, got, tolerance)
                    row[f"parity{'_graph' if graph else ''}"] = parity.to_dict()
                    row[f"notes{'_graph' if graph else ''}"] = list(runner.notes)
                    ok = ok and bool(parity)
            row["status"] = "ok" if ok else "parity failed"
            result["engines"].append(row)
        result["ok"] = ok
    except Exception as exc:  # noqa: BLE001 - the report must say what broke and go on
        result.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-3000:])
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def bench(out: Path) -> dict[str, Any]:
    runs = {}
    for label, extra in (("no-transfers", ["--no-transfers"]), ("with-transfers", [])):
        json_path = out / f"bench-{label}.json"
        cmd = [str(Path(sys.executable).with_name("unet-bench")), "--width", "16", "--sizes", "256,512",
               "--backends", "eager,eager-fp16,ort-cuda,ort-cuda-fp16,trt,trt-fp16", "--iters", "30",
               "--warmup", "25", "--workdir", str(out / "bench-work"), "--json", str(json_path), *extra]
        try:
            res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=LIMITS["bench"] // 2)
            runs[label] = {"ok": res.returncode == 0, "returncode": res.returncode,
                           "output_tail": (res.stdout + res.stderr)[-3000:],
                           "rows": json.loads(json_path.read_text()).get("rows") if json_path.is_file() else None}
        except subprocess.TimeoutExpired:
            runs[label] = {"ok": False, "returncode": -1, "output_tail": "timed out"}
    return runs


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = ["# unetrt GPU check", "", f"Machine: {env.get('gpu', 'no CUDA GPU')} (SM {env.get('compute_capability')}), "
             f"torch {env['torch']} (CUDA {env['torch_cuda']}), onnxruntime {env['onnxruntime']}, "
             f"TensorRT: {env['tensorrt'] or 'none'}", ""]
    tests = report.get("gpu_tests")
    if tests:
        lines += [f"## gpu tests: {'PASS' if tests['ok'] else 'FAIL'}", "",
                  f"{tests['tests']} run, {tests['failures']} failed, {tests['errors']} errors, {tests['skipped']} "
                  f"skipped in {tests['seconds']} s", ""]
    lines += ["## engines", "", "| flavour | engine | status | parity | parity (CUDA graph) |", "|---|---|---|---|---|"]
    for smoke_result in report["smoke"]:
        if "error" in smoke_result:
            lines.append(f"| {smoke_result['flavour']} | - | error: {smoke_result['error'][:120]} | | |")
        for e in smoke_result["engines"]:
            cells = [(e.get(k) or {}).get("max_abs", (e.get(k) or {}).get("passed", "")) for k in ("parity",
                                                                                                    "parity_graph")]
            lines.append(f"| {smoke_result['flavour']} | {e['path']} | {e['status']} {e.get('reason', '')} | "
                         f"{cells[0]} | {cells[1]} |")
    for label, run in (report.get("bench") or {}).items():
        lines += ["", f"## bench ({label}): {'ok' if run['ok'] else 'FAILED'}", "",
                  "| backend | size | p50 ms | parity |", "|---|---|---|---|"]
        for row in run.get("rows") or []:
            p50 = (row.get("latency_ms") or {}).get("p50")
            lines.append(f"| {row['backend']} | {row['height']}x{row['width']} | "
                         f"{'' if p50 is None else f'{p50:.3f}'} | {row.get('parity_passed')} {row['status']} |")
    lines += ["", f"Overall: {'PASS' if report['ok'] else 'FAIL'} in {report['seconds']} s", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="gpu-check", help="report folder")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--skip-bench", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report: dict[str, Any] = {"environment": environment(), "smoke": []}
    if not report["environment"]["cuda_available"]:
        print("gpu-check: no CUDA GPU visible to PyTorch: nothing to check here", file=sys.stderr)
        report.update(ok=False, seconds=0.0, reason="no CUDA GPU")
    else:
        if not args.skip_tests:
            report["gpu_tests"] = gpu_tests(out)
        report["smoke"] = [smoke(flavour, out) for flavour in report["environment"]["tensorrt"]]
        if not args.skip_bench:
            report["bench"] = bench(out)
        checks = [report.get("gpu_tests", {"ok": True})["ok"], *(s["ok"] for s in report["smoke"]),
                  *(r["ok"] for r in (report.get("bench") or {}).values())]
        report.update(ok=all(checks) and bool(report["smoke"]), seconds=round(time.perf_counter() - start, 1))
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(markdown(report) if "gpu_tests" in report or report["smoke"] else
                                   "# unetrt GPU check\n\nNo CUDA GPU visible to PyTorch.\n")
    print(f"gpu-check: {'PASS' if report['ok'] else 'FAIL'}; report in {out / 'report.md'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
