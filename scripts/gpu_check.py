"""GPU acceptance check: what to run first on a machine with an NVIDIA GPU (``make gpu-check``).

``make gpu-check`` installs the GPU set (``.[gpu,rtx,dev]``: onnxruntime-gpu with its CUDA/cuDNN wheels,
TensorRT 10 for CUDA 13, TensorRT-RTX, and no CPU onnxruntime) into its own venv (``.venv-gpu``) and runs:

1. The environment: GPU, compute capability, driver, CUDA/cuDNN as torch sees them, the versions of every
   GPU package that ran (TensorRT flavours, ONNX Runtime and its providers, the nvidia-* wheels).
2. What this GPU must run: standard TensorRT (any GPU), TensorRT-RTX only on its ``ComputeCapability``
   targets (no SM90/SM100), ONNX Runtime's CUDA and TensorRT EPs.
3. The ``gpu`` tests (``pytest -m gpu``), counted from their JUnit XML.
4. Per installed TensorRT flavour: export a small milesial UNet, build FP32 (TF32 off) and FP16 engines,
   check where they may run (the rule ``load()`` uses), run them (plain and with CUDA graphs) and compare
   with eager PyTorch on the same GPU (TF32 off) at the FP32 / FP16 bars.
5. A short benchmark (``unet-bench``, with and without host<->device copies).

A pass means: every expected package imports, every engine of an expected flavour ran and met its
parity bars (each engine on its own: a verdict does not carry over to the next), every expected bench
backend produced ``ok`` rows that passed parity, and the gpu tests had no failure. An expected engine or
backend that was skipped ("not runnable here") is a failure; only engines of a flavour that cannot
target this GPU (TensorRT-RTX on SM90) may be skipped. Each failure is one line in ``failures``.

Writes ``OUT/report.json`` and ``OUT/report.md``; exits 1 if a check failed, 0 otherwise. Time limits
allow for cold TensorRT builds (no timing cache): up to about 40 minutes in all.

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
#: Seconds per phase, sized for cold TensorRT builds (each engine of the gpu tests and the bench is built
#: from scratch: minutes per engine on a large GPU).
LIMITS = {"tests": 1200, "bench": 1200}
#: Distributions whose versions the report records (those that are installed).
PACKAGES = ("torch", "onnxruntime-gpu", "onnxruntime", "tensorrt", "tensorrt-cu13", "tensorrt-cu13-libs",
            "tensorrt-cu13-bindings", "tensorrt-rtx", "nvidia-cublas", "nvidia-cudnn-cu13", "nvidia-cuda-runtime",
            "nvidia-cuda-nvrtc", "unetrt")
#: Bench backends every GPU with the [gpu] set must run; the TensorRT ones when a flavour targets the GPU.
ORT_BACKENDS = ("eager", "eager-fp16", "ort-cuda", "ort-cuda-fp16", "ort-trt")
TRT_BACKENDS = ("trt", "trt-fp16")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """``{distribution: version}`` of the installed ones."""
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _driver() -> str | None:
    try:
        res = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip().splitlines()[0] if res.returncode == 0 and res.stdout.strip() else None


def environment() -> dict[str, Any]:
    import onnxruntime
    import torch

    from unetrt.runtime.engine_choice import installed_flavours, probe_gpu_cc, rtx_targets

    cuda = torch.cuda.is_available()
    env: dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda_available": cuda,
                           "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
                           "driver": _driver(), "onnxruntime": onnxruntime.__version__,
                           "ort_providers": onnxruntime.get_available_providers(),
                           "tensorrt": installed_flavours(), "rtx_targets": rtx_targets(),
                           "packages": package_versions()}
    cc = probe_gpu_cc()
    if cc is not None:
        env.update(gpu=torch.cuda.get_device_name(0), compute_capability=f"{cc[0]}.{cc[1]}",
                   memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return env


def expectations(env: dict[str, Any]) -> dict[str, Any]:
    """What this GPU and the installed set must run.

    Returns:
        ``{"flavours": {flavour: None | why}, "backends": [...], "failures": [...]}``: a flavour mapped to
        ``None`` must build and run here; one mapped to a reason may be skipped for it.
    """
    from unetrt.artifacts.engine_entry import sm_name

    failures: list[str] = []
    flavours: dict[str, str | None] = {}
    packages = env.get("packages") or {}
    installed = env.get("tensorrt") or {}
    if "onnxruntime-gpu" not in packages:
        failures.append("onnxruntime-gpu is not installed: this is not the [gpu] set (make gpu-check installs "
                        ".[gpu,rtx,dev] into .venv-gpu)")
    elif "onnxruntime" in packages:
        failures.append("both onnxruntime and onnxruntime-gpu are installed: one overwrites the other's files "
                        "(pip uninstall -y onnxruntime onnxruntime-gpu, then pip install 'unetrt[gpu]')")
    for provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
        if provider not in (env.get("ort_providers") or []):
            failures.append(f"ONNX Runtime {env.get('onnxruntime')} has no {provider}")
    cc = env.get("compute_capability")
    sm = sm_name(tuple(int(p) for p in cc.split("."))) if cc else None
    if "tensorrt" in installed:
        flavours["tensorrt"] = None  # standard TensorRT targets every GPU
    elif "onnxruntime-gpu" in packages:
        failures.append("TensorRT (tensorrt-cu13 from unetrt[gpu]) does not import: no standard TensorRT engine "
                        "can be checked")
    if "tensorrt-rtx" in installed:
        targets = env.get("rtx_targets") or []
        flavours["tensorrt-rtx"] = None if sm in targets else (
            f"TensorRT-RTX {installed['tensorrt-rtx']} has no {sm} target (its targets: {', '.join(targets)})")
    runs_trt = any(why is None for why in flavours.values())
    return {"flavours": flavours, "backends": [*ORT_BACKENDS, *(TRT_BACKENDS if runs_trt else ())],
            "failures": failures}


def engine_verdict(row: dict[str, Any], expected: str | None) -> tuple[bool, str | None]:
    """``(ok, failure line or None)`` for one engine row of :func:`smoke`, judged on its own.

    Args:
        row: The engine's row.
        expected: Its flavour's expectation: ``None`` = it must run here; a reason = it may be skipped.
    """
    name = f"{row.get('flavour')} {row.get('path')} ({row.get('precision')})"
    if row.get("status") == "not runnable here":
        if expected is None:
            return False, f"{name}: expected to run on this GPU but skipped: {row.get('reason')}"
        return True, None
    keys = [k for k in ("parity", "parity_graph") if k in row]
    if len(keys) < 2:
        return False, f"{name}: did not run ({row.get('status')})"
    failed = [k for k in keys if not (row[k] or {}).get("passed")]
    if failed:
        detail = "; ".join(f"{k}: {(row[k] or {}).get('error') or 'max abs ' + str((row[k] or {}).get('max_abs'))}"
                           for k in failed)
        return False, f"{name}: {detail}"
    return True, None


def verdict(report: dict[str, Any]) -> list[str]:
    """Every failure of the check, one line each (empty: it passed)."""
    expect = report["expectations"]
    failures = list(expect["failures"])
    suite = report.get("gpu_tests")
    if suite is not None and not suite["ok"]:
        failures.append(f"gpu tests: {suite['failures']} failed, {suite['errors']} errors "
                        f"(return code {suite['returncode']})")
    smoked = {s["flavour"]: s for s in report["smoke"]}
    for flavour, why in expect["flavours"].items():
        result = smoked.get(flavour)
        if result is None:
            if why is None:
                failures.append(f"{flavour}: expected here, not checked")
            continue
        if "error" in result:
            failures.append(f"{flavour}: {result['error']}")
        if why is None and not any(e.get("ok") and e.get("status") == "ok" for e in result["engines"]):
            failures.append(f"{flavour}: no engine ran on this GPU")
        failures += [e["failure"] for e in result["engines"] if e.get("failure")]
    for label, run in (report.get("bench") or {}).items():
        rows = run.get("rows")
        if rows is None:
            failures.append(f"bench ({label}): no rows (return code {run.get('returncode')})")
            continue
        for backend in expect["backends"]:
            mine = [r for r in rows if r["backend"] == backend]
            if not mine:
                failures.append(f"bench ({label}): {backend} has no row")
            for r in mine:
                if r["status"] != "ok" or not r.get("parity_passed"):
                    failures.append(f"bench ({label}): {backend} {r['height']}x{r['width']}: {r['status']}"
                                    + ("" if r["status"] != "ok" else f", parity: {r.get('parity_reason')}"))
    return failures


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


def smoke(flavour: str, out: Path, expected: str | None = None) -> dict[str, Any]:
    """Export, build, choose, run and compare one flavour; each engine's outcome is judged on its own row.

    Args:
        expected: ``None`` if the flavour must run on this GPU, else the reason it may be skipped.
    """
    import numpy as np
    import torch

    from unetrt.artifacts.manifest import Manifest
    from unetrt.parity import FP16_TOLERANCE, FP32_TOLERANCE, compare
    from unetrt.runtime import TrtRunner, load
    from unetrt.runtime.engine_choice import engine_unusable_reason, installed_flavours, probe_gpu_cc

    result: dict[str, Any] = {"flavour": flavour, "expected": expected is None, "engines": []}
    start = time.perf_counter()
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        x = np.random.default_rng(0).random((2, 3, 96, 160), dtype=np.float32)
        exports = [_export(flavour, out, fp16) for fp16 in (False, True)]
        with torch.no_grad():
            ref = exports[0][0].cuda()(torch.from_numpy(x).cuda()).cpu().numpy()
        entries = [(folder, Manifest.read(folder), e) for _, folder in exports for e in Manifest.read(folder).engines]
        for folder, manifest, entry in entries:
            row: dict[str, Any] = {"flavour": flavour, "path": entry.path, "precision": entry.precision,
                                   "version": entry.version, "tf32": entry.tf32,
                                   "compute_capabilities": entry.compute_capabilities}
            why = engine_unusable_reason(entry, folder, gpu_cc=probe_gpu_cc(), installed=installed_flavours())
            chosen = load(folder, precision=entry.precision)  # what a user's load() picks here, and why
            row.update(load_chose=chosen.path.name, load_notes=chosen.notes[:4])
            if why:  # e.g. an RTX plan on SM90: load() falls back to the ONNX
                row.update(status="not runnable here", reason=why)
            else:
                _run_engine(row, folder / entry.path, manifest, x, ref,
                            FP16_TOLERANCE if entry.precision == "fp16" else FP32_TOLERANCE, TrtRunner, compare)
            row["ok"], row["failure"] = engine_verdict(row, expected)
            result["engines"].append(row)
    except Exception as exc:  # noqa: BLE001 - the report must say what broke and go on
        result.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-3000:])
    result["ok"] = "error" not in result and all(e["ok"] for e in result["engines"])
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def _run_engine(row: dict[str, Any], path: Path, manifest: Any, x: Any, ref: Any, tolerance: Any, runner_cls: Any,
                compare: Any) -> None:
    """Run one engine plain and with CUDA graphs; record parity (or the error) of each on ``row``."""
    for graph in (False, True):
        key = f"parity{'_graph' if graph else ''}"
        try:
            with runner_cls(path, cuda_graph=graph, manifest=manifest) as runner:
                row[key] = compare(ref, runner.infer({"input": x})["logits"], tolerance).to_dict()
                row[f"notes{'_graph' if graph else ''}"] = list(runner.notes)
        except Exception as exc:  # noqa: BLE001 - recorded on this engine's row
            row[key] = {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    row["status"] = "ok" if all(row[k].get("passed") for k in ("parity", "parity_graph")) else "failed"


def bench(out: Path) -> dict[str, Any]:
    runs = {}
    for label, extra in (("no-transfers", ["--no-transfers"]), ("with-transfers", [])):
        json_path = out / f"bench-{label}.json"
        cmd = [str(Path(sys.executable).with_name("unet-bench")), "--width", "16", "--sizes", "256,512",
               "--backends", ",".join((*ORT_BACKENDS, *TRT_BACKENDS)), "--iters", "30",
               "--warmup", "25", "--workdir", str(out / "bench-work"), "--json", str(json_path), *extra]
        try:  # the first run builds the engines (cold), the second reuses them from the workdir
            res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                 timeout=LIMITS["bench"] * (3 if label == "no-transfers" else 1) // 4)
            runs[label] = {"ok": res.returncode == 0, "returncode": res.returncode,
                           "output_tail": (res.stdout + res.stderr)[-3000:],
                           "rows": json.loads(json_path.read_text()).get("rows") if json_path.is_file() else None}
        except subprocess.TimeoutExpired:
            runs[label] = {"ok": False, "returncode": -1, "output_tail": "timed out", "rows": None}
    return runs


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())
    lines = ["# unetrt GPU check", "",
             f"Machine: {env.get('gpu', 'no CUDA GPU')} (SM {env.get('compute_capability')}), driver "
             f"{env.get('driver')}, torch {env['torch']} (CUDA {env['torch_cuda']}, cuDNN {env.get('cudnn')}), "
             f"onnxruntime {env['onnxruntime']} ({', '.join(env.get('ort_providers') or [])}), "
             f"TensorRT: {env['tensorrt'] or 'none'}", "", f"Packages: {packages or 'not recorded'}", ""]
    tests = report.get("gpu_tests")
    if tests:
        lines += [f"## gpu tests: {'PASS' if tests['ok'] else 'FAIL'}", "",
                  f"{tests['tests']} run, {tests['failures']} failed, {tests['errors']} errors, {tests['skipped']} "
                  f"skipped in {tests['seconds']} s", ""]
    lines += ["## engines", "", "| flavour | engine | status | parity | parity (CUDA graph) | verdict |",
              "|---|---|---|---|---|---|"]
    for smoke_result in report["smoke"]:
        if "error" in smoke_result:
            lines.append(f"| {smoke_result['flavour']} | - | error: {smoke_result['error'][:120]} | | | FAIL |")
        for e in smoke_result["engines"]:
            cells = [(e.get(k) or {}).get("max_abs", (e.get(k) or {}).get("passed", "")) for k in ("parity",
                                                                                                    "parity_graph")]
            lines.append(f"| {smoke_result['flavour']} | {e['path']} | {e['status']} {e.get('reason', '')} | "
                         f"{cells[0]} | {cells[1]} | {'ok' if e.get('ok') else 'FAIL'} |")
    for label, run in (report.get("bench") or {}).items():
        lines += ["", f"## bench ({label}): {'ok' if run['ok'] else 'FAILED'}", "",
                  "| backend | size | p50 ms | parity |", "|---|---|---|---|"]
        for row in run.get("rows") or []:
            p50 = (row.get("latency_ms") or {}).get("p50")
            lines.append(f"| {row['backend']} | {row['height']}x{row['width']} | "
                         f"{'' if p50 is None else f'{p50:.3f}'} | {row.get('parity_passed')} {row['status']} |")
    if report.get("failures"):
        lines += ["", "## failures", "", *(f"- {f}" for f in report["failures"])]
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
    env = environment()
    report: dict[str, Any] = {"environment": env, "expectations": expectations(env), "smoke": []}
    if not env["cuda_available"]:
        print("gpu-check: no CUDA GPU visible to PyTorch: nothing to check here", file=sys.stderr)
        report.update(ok=False, seconds=0.0, reason="no CUDA GPU", failures=["no CUDA GPU visible to PyTorch"])
    else:
        if not args.skip_tests:
            report["gpu_tests"] = gpu_tests(out)
        expected = report["expectations"]["flavours"]
        report["smoke"] = [smoke(flavour, out, expected.get(flavour, "not expected on this GPU"))
                           for flavour in env["tensorrt"]]
        if not args.skip_bench:
            report["bench"] = bench(out)
        report["failures"] = verdict(report)
        report.update(ok=not report["failures"], seconds=round(time.perf_counter() - start, 1))
        for line in report["failures"]:
            print(f"gpu-check: FAIL {line}", file=sys.stderr)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(markdown(report) if "gpu_tests" in report or report["smoke"] else
                                   "# unetrt GPU check\n\nNo CUDA GPU visible to PyTorch.\n")
    print(f"gpu-check: {'PASS' if report['ok'] else 'FAIL'}; report in {out / 'report.md'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
