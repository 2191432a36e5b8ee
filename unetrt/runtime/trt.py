"""TensorRT runner: a serialized plan (TensorRT 10/11 or TensorRT-RTX) run with torch CUDA tensors.

I/O goes by tensor name (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) on a
private CUDA stream; the runner synchronises before returning. With ``cuda_graph=True`` the first call
at a new input shape runs once, captures the enqueue in a CUDA graph, and later calls at that shape
copy the inputs into the captured buffers and replay it (one graph per shape). Only API common to
TensorRT 10, 11 and TensorRT-RTX is used; the one TensorRT 11 rename touched here
(``device_memory_size`` -> ``device_memory_size_v2``) is looked up by name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.dtypes import trt_dtype_name
from ..artifacts.manifest import Manifest
from ..artifacts.trt import import_tensorrt, process_logger
from ..errors import RunnerError
from .base import InputConstraint, Runner, TensorMeta, apply_manifest_input

__all__ = ["TrtRunner", "engine_io", "rebuild_command"]


def engine_io(engine) -> tuple[dict[str, InputConstraint], dict[str, TensorMeta]]:
    """Inputs (with optimisation profile 0's min/max as bounds) and outputs of a deserialised engine."""
    inputs, outputs = {}, {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        mode = getattr(engine.get_tensor_mode(name), "name", str(engine.get_tensor_mode(name)))
        dtype = trt_dtype_name(engine.get_tensor_dtype(name))
        shape = tuple(int(d) if int(d) >= 0 else None for d in engine.get_tensor_shape(name))
        if mode.upper().endswith("INPUT"):
            low = high = None
            if None in shape:
                low, _opt, high = (tuple(int(d) for d in dims) for dims in engine.get_tensor_profile_shape(name, 0))
            inputs[name] = InputConstraint(name, dtype, shape, low, high)
        else:
            outputs[name] = TensorMeta(dtype, shape)
    return inputs, outputs


def entry_dict(entry: Any) -> dict:
    """A manifest engine entry as a plain dict."""
    from dataclasses import asdict

    return asdict(entry)


def rebuild_command(manifest: Manifest | None, precision: str | None = None,
                    out_dir: str | None = None) -> str:
    """The ``unet-export`` command that rebuilds an engine, filled from the manifest's model section."""
    model = manifest.model if manifest is not None else None
    parts = ["unet-export"]
    if model is not None and model.arch:
        parts.append(f"--arch {model.arch}")
    elif model is not None and model.factory:
        parts.append(f"--model {model.factory}")
    else:
        parts.append("--arch ARCH")
    if model is not None and model.kwargs:
        parts.append(f"--model-kwargs '{json.dumps(model.kwargs, sort_keys=True)}'")
    if model is not None and model.checkpoint:
        parts.append(f"--checkpoint {model.checkpoint.path}")
    if precision == "fp16":
        parts.append("--fp16")
    parts.append(f"--engine -o {out_dir or 'DIR'} --force")
    return " ".join(parts)


def _cuda_torch(path: Path):
    import torch

    if not torch.cuda.is_available():
        raise RunnerError(f"TensorRT engine {path.name} needs a CUDA GPU and none is visible to PyTorch",
                          "a machine with an NVIDIA GPU, its driver and a CUDA build of torch",
                          "run the ONNX instead: unetrt.runtime.load(dir, backend='ort')")
    return torch


class TrtRunner(Runner):
    """Runs a serialized TensorRT engine.

    Args:
        engine_path: A ``.engine``/``.plan`` file (a plain plan, as ``trtexec`` writes).
        flavour: ``"auto"`` (TensorRT, then TensorRT-RTX), ``"tensorrt"`` or ``"tensorrt-rtx"``.
        cuda_graph: Capture and replay a CUDA graph per input shape.
        manifest: The ``manifest.json`` dict (tightens input checks; fills the rebuild command).
        runtime_cache: TensorRT-RTX JIT runtime-cache file, loaded at activate and saved at
            deactivate (ignored by standard TensorRT).
        device: CUDA device index.
        name: Label for reports.
    """

    def __init__(self, engine_path: str | os.PathLike, flavour: str = "auto", cuda_graph: bool = False, *,
                 manifest: Manifest | None = None, runtime_cache: str | os.PathLike | None = None,
                 device: int = 0, name: str | None = None):
        super().__init__(name or f"trt{'-graph' if cuda_graph else ''}", manifest)
        self.path = Path(engine_path)
        if not self.path.is_file():
            raise RunnerError(f"engine file {self.path} does not exist", "an existing .engine/.plan file",
                              "build one: " + rebuild_command(manifest))
        self.flavour, self.cuda_graph, self.device = flavour, bool(cuda_graph), int(device)
        self.runtime_cache = Path(runtime_cache) if runtime_cache else None
        self._state: dict[str, Any] = {}
        self._graphs: dict[tuple, tuple] = {}

    def _activate(self) -> None:
        torch = _cuda_torch(self.path)
        trt, flavour, version = import_tensorrt(self.flavour)
        torch.cuda.set_device(self.device)
        logger = process_logger(trt).reset()
        runtime = trt.Runtime(logger)
        entry = self._manifest_entry()
        if (entry.get("options") or {}).get("version_compatible"):
            runtime.engine_host_code_allowed = True  # the plan embeds its lean runtime
        engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            gpu = torch.cuda.get_device_name(self.device)
            built = f" (manifest: {entry.get('flavour')} {entry.get('version')})" if entry else ""
            raise RunnerError(f"cannot deserialise {self.path}: engine built by another TensorRT version or for "
                              f"another GPU{built}{logger.last()}",
                              f"a plan built by {flavour} {version} for {gpu}",
                              "rebuild it: " + rebuild_command(self.manifest, entry.get("precision"),
                                                               str(self.path.parent)))
        context = self._create_context(engine)
        if context is None:
            raise RunnerError(f"TensorRT could not create an execution context for {self.path}",
                              "enough free GPU memory", "free GPU memory or use a smaller max shape")
        self._inputs, self._outputs = engine_io(engine)
        section = self.manifest.input if self.manifest else None
        self._inputs = {n: apply_manifest_input(c, section if len(c.shape) == 4 else None)
                        for n, c in self._inputs.items()}
        mem = getattr(engine, "device_memory_size_v2", None) or getattr(engine, "device_memory_size", 0)
        self._state = {"torch": torch, "trt": trt, "logger": logger, "runtime": runtime, "engine": engine,
                       "context": context, "stream": torch.cuda.Stream(self.device),
                       "device": torch.device("cuda", self.device)}
        note = (f"{flavour} {version}: {engine.num_optimization_profiles} profile(s), profile 0 used; "
                f"{int(mem) / 2**20:.1f} MiB activation memory")
        if note not in self.notes:
            self.notes.append(note)

    def _manifest_entry(self) -> dict:
        entry = self.manifest.engine(self.path.name) if self.manifest else None
        return entry_dict(entry) if entry is not None else {}

    def _create_context(self, engine):
        if self.runtime_cache is None or not hasattr(engine, "create_runtime_config"):
            return engine.create_execution_context()
        config = engine.create_runtime_config()
        cache = config.create_runtime_cache()
        if self.runtime_cache.is_file():
            cache.deserialize(self.runtime_cache.read_bytes())
        config.set_runtime_cache(cache)
        self._runtime_cache_obj = cache
        return engine.create_execution_context(config)

    def _bind(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """Set input shapes and addresses, allocate outputs; return the output tensors."""
        torch, ctx = self._state["torch"], self._state["context"]
        for name, t in tensors.items():
            ctx.set_input_shape(name, tuple(t.shape))
            ctx.set_tensor_address(name, t.data_ptr())
        outputs = {}
        for name, meta in self._outputs.items():
            shape = tuple(ctx.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise RunnerError(f"output {name!r} has an unresolved shape {shape}", "shapes set by the inputs",
                                  "check the input shapes against the engine profile")
            out = torch.empty(shape, dtype=getattr(torch, meta.dtype), device=self._state["device"])
            ctx.set_tensor_address(name, out.data_ptr())
            outputs[name] = out
        return outputs

    def _enqueue(self) -> None:
        stream = self._state["stream"]
        if not self._state["context"].execute_async_v3(stream.cuda_stream):
            raise RunnerError(f"TensorRT execute_async_v3 failed for {self.path}", "a successful enqueue",
                              "run with TensorRT logging at VERBOSE to see why")

    def _infer(self, feed: dict[str, Any], to_host: bool) -> dict[str, Any]:
        torch, stream, device = self._state["torch"], self._state["stream"], self._state["device"]
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            tensors = {n: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v).to(device).contiguous()
                       for n, v in feed.items()}
            if self.cuda_graph:
                outputs = self._replay(tensors)
            else:
                outputs = self._bind(tensors)
                self._enqueue()
        stream.synchronize()
        if to_host:
            return {n: t.cpu().numpy() for n, t in outputs.items()}
        return outputs

    def _replay(self, tensors: dict[str, Any]) -> dict[str, Any]:
        torch = self._state["torch"]
        key = tuple((n, tuple(t.shape)) for n, t in sorted(tensors.items()))
        if key not in self._graphs:
            static = {n: t.clone() for n, t in tensors.items()}
            outputs = self._bind(static)
            self._enqueue()  # uncaptured first run: TensorRT may allocate or sync on it
            self._state["stream"].synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self._state["stream"], capture_error_mode="thread_local"):
                self._enqueue()
            self._graphs[key] = (graph, static, outputs)
        graph, static, outputs = self._graphs[key]
        for name, t in tensors.items():
            static[name].copy_(t)
        graph.replay()
        return {n: t.clone() for n, t in outputs.items()}

    def _deactivate(self) -> None:
        cache = getattr(self, "_runtime_cache_obj", None)
        if cache is not None and self.runtime_cache is not None:
            self.runtime_cache.parent.mkdir(parents=True, exist_ok=True)
            self.runtime_cache.write_bytes(bytes(cache.serialize()))
        self._runtime_cache_obj = None
        torch = self._state.get("torch")
        self._graphs.clear()
        for key in ("context", "engine", "runtime"):  # TensorRT objects die before what created them
            self._state.pop(key, None)
        self._state.clear()
        if torch is not None:
            torch.cuda.empty_cache()
