"""The table of built-in backends: eager PyTorch, ONNX Runtime (CPU, CUDA, TensorRT EP) and TensorRT engines.

Only values: :mod:`unetrt.runtime.backends` registers them on first use (this module imports the
:class:`~unetrt.runtime.backend_spec.Backend` type, not the registry).

INT8: ``load(dir, precision="int8")`` on a CPU picks ``ort-int8-cpu`` (the uint8 form written with
``--int8-cpu``) when the export has it, else ``ort-int8`` (the TensorRT form); on a GPU ``trt-int8``.

Registration order is preference order: on a GPU, engines before ONNX Runtime CUDA before CPU;
FP16 before FP32 there, FP32 before FP16 on a CPU. Eager and ONNX Runtime's TensorRT EP are never
chosen by ``backend="auto"``; name them to use them.
"""

from __future__ import annotations

from typing import Any

from .backend_spec import Backend, RunOptions

_PYT = "unetrt.runtime.pyt:TorchRunner"
_ORT = "unetrt.runtime.ort:OrtRunner"
_TRT = "unetrt.runtime.trt:TrtRunner"


def _ort_missing(provider: str | None = None) -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return "onnxruntime is not installed (pip install 'unetrt[cpu]' or 'unetrt[gpu]')"
    if provider and provider not in onnxruntime.get_available_providers():
        return (f"this onnxruntime build has no {provider} (pip uninstall onnxruntime, then pip install "
                f"'unetrt[gpu]')")
    return None


def _trt_missing() -> str | None:
    from ..artifacts.trt import import_tensorrt
    from ..errors import UnetrtError

    try:
        import_tensorrt("auto")
    except UnetrtError as exc:
        return f"TensorRT not usable: {exc}"
    return None


def _ort_run(run: RunOptions) -> dict[str, Any]:
    return {"threads": run.threads, "graph_optimization_level": run.ort_level}


def _ort_trt_run(run: RunOptions) -> dict[str, Any]:
    options = _ort_run(run)
    if run.cache_dir:
        options["trt_options"] = {"engine_cache_enable": True, "engine_cache_path": run.cache_dir}
    return options


_TRANSFER_NOTE = ("host<->device copies always timed (OrtRunner feeds host arrays); peak memory excludes ONNX "
                  "Runtime's own CUDA allocations")
_TRT_NOTE = "peak memory excludes TensorRT's activation memory (see the runner's note)"
_INT8_NOTE = ("INT8 artifacts the bench exports itself are calibrated on random inputs with the accuracy bars off "
              "(its parity rows are the measurement); export with --int8 --calib-images for deployment")

#: Built-in backends in registration (preference) order.
BUILTIN: tuple[Backend, ...] = (
    Backend("trt-fp16", "trt", _TRT, "engine", "fp16", ("cuda",), "TensorRT engine, FP16",
            available=_trt_missing, notes=(_TRT_NOTE,)),
    Backend("trt", "trt", _TRT, "engine", "fp32", ("cuda",), "TensorRT engine, FP32",
            available=_trt_missing, notes=(_TRT_NOTE,)),
    Backend("trt-int8", "trt", _TRT, "engine", "int8", ("cuda",), "TensorRT engine, INT8 (Q/DQ ONNX)",
            available=_trt_missing, notes=(_TRT_NOTE,)),
    Backend("ort-cuda-fp16", "ort", _ORT, "onnx", "fp16", ("cuda",), "ONNX Runtime CUDA EP, FP16 ONNX",
            options={"providers": "cuda"}, available=lambda: _ort_missing("CUDAExecutionProvider"), adapt=_ort_run,
            notes=(_TRANSFER_NOTE,)),
    Backend("ort-cuda", "ort", _ORT, "onnx", "fp32", ("cuda",), "ONNX Runtime CUDA EP, FP32 ONNX",
            options={"providers": "cuda"}, available=lambda: _ort_missing("CUDAExecutionProvider"), adapt=_ort_run,
            notes=(_TRANSFER_NOTE,)),
    Backend("ort-trt", "ort", _ORT, "onnx", "fp32", ("cuda",), "ONNX Runtime TensorRT EP, FP32 ONNX",
            options={"providers": "tensorrt"}, available=lambda: _ort_missing("TensorrtExecutionProvider"),
            adapt=_ort_trt_run, auto=False, parity="tf32",
            notes=(_TRANSFER_NOTE, "the TensorRT EP has no TF32 switch: TensorRT's default (TF32 on, Ampere and "
                                   "later) applies to this FP32 graph, so its parity bar is the TF32 one")),
    Backend("ort", "ort", _ORT, "onnx", "fp32", ("cpu",), "ONNX Runtime CPU, FP32 ONNX", aliases=("ort-cpu",),
            options={"providers": "cpu"}, available=_ort_missing, adapt=_ort_run),
    Backend("ort-fp16", "ort", _ORT, "onnx", "fp16", ("cpu",), "ONNX Runtime CPU, FP16 ONNX (FP32 I/O)",
            options={"providers": "cpu"}, available=_ort_missing, adapt=_ort_run,
            notes=("ort-fp16 on CPU: ONNX Runtime's CPU provider has few FP16 kernels and runs most of the graph "
                   "through inserted casts, so this row measures FP16 accuracy, not FP16 speed",)),
    Backend("ort-int8-cpu", "ort", _ORT, "onnx", "int8", ("cpu",),
            "ONNX Runtime CPU, INT8 ONNX in its CPU form (uint8 asymmetric, model_int8_cpu.onnx)",
            options={"providers": "cpu"}, available=_ort_missing, adapt=_ort_run, form="cpu",
            notes=(_INT8_NOTE,)),
    Backend("ort-int8", "ort", _ORT, "onnx", "int8", ("cpu",),
            "ONNX Runtime CPU, INT8 ONNX in the TensorRT form (symmetric int8 Q/DQ, model_int8.onnx)",
            options={"providers": "cpu"}, available=_ort_missing, adapt=_ort_run, notes=(_INT8_NOTE,)),
    Backend("eager", "torch", _PYT, "module", "fp32", ("cuda", "cpu"),
            "PyTorch eager FP32 (CUDA when present, else CPU)", aliases=("torch",), options={"precision": "fp32"},
            auto=False),
    Backend("eager-fp16", "torch", _PYT, "module", "fp16", ("cuda",), "PyTorch eager FP16 (CUDA only)",
            aliases=("torch-fp16",), options={"precision": "fp16"}, auto=False),
)
