"""TensorRT runner: a serialized plan (TensorRT 10/11 or TensorRT-RTX) run with torch CUDA tensors.

I/O goes by tensor name (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``, each return
value checked) on a private CUDA stream; the runner synchronises before returning. The plan is opened by
the flavour that built it (the manifest says which), never by whichever TensorRT imports first.

CUDA graphs (``cuda_graph=True``): on standard TensorRT the first call at a new shape runs once, then
the enqueue is captured and later calls at that shape replay it (one graph per shape); a capture
TensorRT cannot record falls back to plain execution with a note. TensorRT-RTX captures graphs itself
(``IRuntimeConfig.cuda_graph_strategy``): a user capture would need plans built with
``REQUIRE_USER_ALLOCATION`` and could freeze the fallback kernels its lazy specialisation replaces.
The JIT runtime cache is a TensorRT-RTX feature, decided by flavour; it outlives every context.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts.dtypes import torch_dtype, trt_dtype_name
from ..artifacts.manifest import Manifest
from ..artifacts.trt import import_tensorrt, process_logger
from ..errors import RunnerError
from .base import InputConstraint, Runner, TensorMeta, apply_manifest_input, format_shape
from .cuda_device import CudaDevice

if TYPE_CHECKING:
    import tensorrt

__all__ = ["TrtRunner", "engine_io", "rebuild_command"]


def engine_io(engine: "tensorrt.ICudaEngine") -> tuple[dict[str, InputConstraint], dict[str, TensorMeta]]:
    """Inputs (with optimisation profile 0's min/max as bounds) and outputs of a deserialised engine."""
    inputs: dict[str, InputConstraint] = {}
    outputs: dict[str, TensorMeta] = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        mode = getattr(engine.get_tensor_mode(name), "name", str(engine.get_tensor_mode(name)))
        dtype = trt_dtype_name(engine.get_tensor_dtype(name))
        shape = tuple(int(d) if int(d) >= 0 else None for d in _dims(engine.get_tensor_shape(name)))
        if mode.upper().endswith("INPUT"):
            low: tuple[int, ...] | None = None
            high: tuple[int, ...] | None = None
            if None in shape:
                low, _opt, high = (_dims(dims) for dims in engine.get_tensor_profile_shape(name, 0))
            inputs[name] = InputConstraint(name, dtype, shape, low, high)
        else:
            outputs[name] = TensorMeta(dtype, shape)
    return inputs, outputs


def _dims(dims: Any) -> tuple[int, ...]:
    """A ``trt.Dims`` (or any sequence) as a tuple of ints."""
    return tuple(int(dims[i]) for i in range(len(dims)))


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


def _device(index: int, path: Path) -> CudaDevice:
    """The CUDA device the engine runs on (tests put a CPU stand-in here)."""
    return CudaDevice(index, what=f"TensorRT engine {path.name}")


class TrtRunner(Runner):
    """Runs a serialized TensorRT engine.

    Args:
        engine_path: A ``.engine``/``.plan`` file (a plain plan, as ``trtexec`` writes).
        flavour: ``"tensorrt"``, ``"tensorrt-rtx"`` or ``"auto"``; ``None`` (default) takes the flavour
            the manifest records for this engine (``"auto"`` without a manifest entry).
        cuda_graph: Replay CUDA graphs (TensorRT: one captured graph per input shape; TensorRT-RTX:
            its own ``cuda_graph_strategy``).
        manifest: The ``manifest.json`` dict (tightens input checks; fills the rebuild command).
        runtime_cache: TensorRT-RTX JIT runtime-cache file, loaded at activate and saved at
            deactivate. Standard TensorRT has no runtime cache: the option is ignored with a note.
        device: CUDA device index.
        name: Label for reports.
    """

    def __init__(self, engine_path: str | os.PathLike, flavour: str | None = None, cuda_graph: bool = False, *,
                 manifest: Manifest | None = None, runtime_cache: str | os.PathLike | None = None,
                 device: int = 0, name: str | None = None):
        super().__init__(name or f"trt{'-graph' if cuda_graph else ''}", manifest)
        self.path = Path(engine_path)
        if not self.path.is_file():
            raise RunnerError(f"engine file {self.path} does not exist", "an existing .engine/.plan file",
                              "build one: " + rebuild_command(manifest))
        self.flavour = flavour or self._manifest_entry().get("flavour") or "auto"
        self.cuda_graph, self.device = bool(cuda_graph), int(device)
        self.runtime_cache = Path(runtime_cache) if runtime_cache else None
        self._state: dict[str, Any] = {}
        self._graphs: dict[tuple, tuple] = {}
        self._graph_failure: str | None = None

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _activate(self) -> None:
        dev = _device(self.device, self.path)
        trt, flavour, version = import_tensorrt(self.flavour)
        logger = process_logger(trt).reset()
        runtime: tensorrt.Runtime = trt.Runtime(logger)
        entry = self._manifest_entry()
        if (entry.get("options") or {}).get("version_compatible"):
            runtime.engine_host_code_allowed = True  # the plan embeds its lean runtime
        engine: tensorrt.ICudaEngine | None = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            built = f" (manifest: {entry.get('flavour')} {entry.get('version')})" if entry else ""
            raise RunnerError(f"cannot deserialise {self.path}: engine built by another TensorRT version or for "
                              f"another GPU{built}{logger.last()}",
                              f"a plan built by {flavour} {version} for {dev.name}",
                              "rebuild it: " + rebuild_command(self.manifest, entry.get("precision"),
                                                               str(self.path.parent)))
        self._state = {"trt": trt, "flavour": flavour, "logger": logger, "runtime": runtime, "engine": engine,
                       "device": dev, "stream": dev.new_stream()}  # the stream also makes the CUDA context current
        config = self._runtime_config(trt, flavour, engine)
        context: tensorrt.IExecutionContext | None = (engine.create_execution_context(config) if config is not None
                                                      else engine.create_execution_context())
        if context is None:
            self._state.clear()
            raise RunnerError(f"TensorRT could not create an execution context for {self.path}{logger.last()}",
                              "enough free GPU memory", "free GPU memory or use a smaller max shape")
        self._state["context"] = context
        self._inputs, self._outputs = engine_io(engine)
        section = self.manifest.input if self.manifest else None
        self._inputs = {n: apply_manifest_input(c, section if len(c.shape) in (4, 5) else None)
                        for n, c in self._inputs.items()}
        self._capture = self.cuda_graph and flavour != "tensorrt-rtx"
        mem = int(getattr(engine, "device_memory_size_v2", None) or getattr(engine, "device_memory_size", 0) or 0)
        self._note(f"{flavour} {version}: {engine.num_optimization_profiles} profile(s), profile 0 used; "
                   f"{int(mem) / 2**20:.1f} MiB activation memory")

    def _runtime_config(self, trt: Any, flavour: str, engine: Any) -> Any:
        """TensorRT-RTX: a runtime config with the JIT cache and graph strategy; TensorRT: ``None``."""
        if flavour != "tensorrt-rtx":
            if self.runtime_cache is not None:
                self._note(f"runtime cache {self.runtime_cache.name} ignored: the JIT runtime cache is a "
                           f"TensorRT-RTX feature ({flavour} plans hold compiled kernels)")
            return None
        if self.runtime_cache is None and not self.cuda_graph:
            return None
        config = engine.create_runtime_config()  # RTX-only API below; the 10.13 stubs do not know it
        if self.cuda_graph:
            config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
            self._note("CUDA graphs by TensorRT-RTX (cuda_graph_strategy=WHOLE_GRAPH_CAPTURE), not a user capture")
        if self.runtime_cache is not None:
            cache = config.create_runtime_cache()
            if self.runtime_cache.is_file() and not cache.deserialize(self.runtime_cache.read_bytes()):
                self._note(f"runtime cache {self.runtime_cache} is stale (another TensorRT-RTX version, GPU or "
                           f"driver): started empty, rewritten at deactivate")
            if config.set_runtime_cache(cache) is False:
                raise RunnerError(f"TensorRT-RTX refused the runtime cache {self.runtime_cache}",
                                  "a runtime cache it accepts", "delete the cache file or drop runtime_cache")
            self._state["runtime_cache"] = cache
        self._state["runtime_config"] = config
        return config

    def _manifest_entry(self) -> dict:
        entry = self.manifest.engine(self.path.name) if self.manifest else None
        return entry_dict(entry) if entry is not None else {}

    def _bind(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """Set input shapes and addresses, allocate outputs; return the output tensors."""
        dev, logger = self._state["device"], self._state["logger"]
        ctx: tensorrt.IExecutionContext = self._state["context"]
        for name, t in tensors.items():
            if not ctx.set_input_shape(name, tuple(t.shape)):
                raise RunnerError(f"TensorRT refused input shape {format_shape(t.shape)} for {name!r}{logger.last()}",
                                  self._inputs[name].describe(), "pass a shape inside the engine's profile")
            if not ctx.set_tensor_address(name, t.data_ptr()):
                raise RunnerError(f"TensorRT refused the address of input {name!r}{logger.last()}",
                                  "a contiguous device tensor", "pass a CUDA tensor or a numpy array")
        outputs = {}
        for name, meta in self._outputs.items():
            shape = _dims(ctx.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise RunnerError(f"output {name!r} has an unresolved shape {shape}", "shapes set by the inputs",
                                  "check the input shapes against the engine profile")
            out = dev.torch.empty(shape, dtype=torch_dtype(meta.dtype, dev.torch), device=dev.device)
            if not ctx.set_tensor_address(name, out.data_ptr()):
                raise RunnerError(f"TensorRT refused the address of output {name!r}{logger.last()}",
                                  "a device buffer TensorRT accepts", "report this with the TensorRT log")
            outputs[name] = out
        return outputs

    def _enqueue(self) -> None:
        dev, stream = self._state["device"], self._state["stream"]
        if not self._state["context"].execute_async_v3(dev.handle(stream)):
            raise RunnerError(f"TensorRT execute_async_v3 failed for {self.path}{self._state['logger'].last()}",
                              "a successful enqueue", "run with TensorRT logging at VERBOSE to see why")

    def _to_device(self, feed: dict[str, Any]) -> dict[str, Any]:
        dev = self._state["device"]
        return {n: (dev.torch.from_numpy(v) if isinstance(v, np.ndarray) else v).to(dev.device).contiguous()
                for n, v in feed.items()}

    def _infer(self, feed: dict[str, Any], to_host: bool) -> dict[str, Any]:
        dev, stream = self._state["device"], self._state["stream"]
        with dev.on(stream):
            tensors = self._to_device(feed)
            if self._capture:
                outputs = self._replay(tensors)
            else:
                outputs = self._bind(tensors)
                self._enqueue()
        stream.synchronize()
        if to_host:
            return {n: t.cpu().numpy() for n, t in outputs.items()}
        return outputs

    def _replay(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """Replay the shape's graph (capturing it on first use); plain execution once a capture failed."""
        key = tuple((n, tuple(t.shape)) for n, t in sorted(tensors.items()))
        if self._graph_failure is None and key not in self._graphs:
            dev, stream, ctx = self._state["device"], self._state["stream"], self._state["context"]
            static = {n: t.clone() for n, t in tensors.items()}
            outputs = self._bind(static)
            self._enqueue()  # uncaptured first run: TensorRT may allocate or sync on it
            stream.synchronize()
            graph, why = dev.capture(stream, lambda: ctx.execute_async_v3(dev.handle(stream)))
            if graph is None:
                self._graph_failure = why
                self._note(f"CUDA graph capture failed ({why}{self._state['logger'].last()}): running without "
                           f"CUDA graphs")
                return outputs  # the uncaptured run above already computed them
            self._graphs[key] = (graph, static, outputs)
        if self._graph_failure is not None:
            outputs = self._bind(tensors)
            self._enqueue()
            return outputs
        graph, static, outputs = self._graphs[key]
        for name, t in tensors.items():
            static[name].copy_(t)
        graph.replay()
        return {n: t.clone() for n, t in outputs.items()}

    @property
    def min_warmup(self) -> int:
        """Fewest untimed runs before timing: TensorRT-RTX swaps in specialised kernels after the first runs."""
        return RTX_MIN_WARMUP if self._state.get("flavour") == "tensorrt-rtx" else 1

    def device_step(self, feed: Mapping[str, Any]):
        """Bind device buffers for ``feed`` once and return a :class:`DeviceStep` that only enqueues.

        For timing the engine alone (no host<->device copies, no allocation, no shape setting per
        call): the bench records CUDA events around ``step.run()`` on ``step.stream``.
        """
        from .cuda_device import DeviceStep

        self._require_active("device_step()")
        self._check_feed(feed)
        dev, stream = self._state["device"], self._state["stream"]
        with dev.on(stream):
            tensors = self._to_device(dict(feed))
            outputs = self._bind(tensors)
        stream.synchronize()
        rtx = self._state["flavour"] == "tensorrt-rtx"

        def run() -> None:
            with dev.on(stream):
                self._enqueue()

        return DeviceStep(run=run, stream=stream, events=dev.events, inputs=tensors, outputs=outputs,
                          min_warmup=self.min_warmup,
                          note="TensorRT-RTX: warm-up covers its lazy kernel specialisation" if rtx else None)

    def _deactivate(self) -> None:
        cache = self._state.get("runtime_cache")
        if cache is not None and self.runtime_cache is not None:
            from ..fileio import atomic_write_bytes

            self.runtime_cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.runtime_cache, bytes(cache.serialize()))
        dev = self._state.get("device")
        self._graphs.clear()
        self._graph_failure = None
        # Contexts die first; the runtime cache and config outlive every context; the engine outlives
        # them; the runtime goes last.
        for key in ("context", "runtime_config", "runtime_cache", "engine", "runtime"):
            self._state.pop(key, None)
        self._state.clear()
        if dev is not None:
            dev.release()


#: Untimed iterations a TensorRT-RTX engine needs before its lazily specialised kernels are in place.
RTX_MIN_WARMUP = 20
