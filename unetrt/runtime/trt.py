"""TensorRT runner: a serialized plan (TensorRT 10/11 or TensorRT-RTX) run with torch CUDA tensors.

I/O goes by tensor name (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``, each return
value checked) on a private CUDA stream; the runner synchronises before returning. With several
optimisation profiles, the first one that admits the input shapes is selected per call
(``set_optimization_profile_async``, as NVIDIA's C++ samples do). Device outputs returned to the caller
are recorded on the caller's stream (``record_stream``); outputs numpy cannot hold (bfloat16, float8)
reach the host as float32. The plan is opened by the flavour that built it (the manifest says which),
never by whichever TensorRT imports first; a weight-stripped plan is refitted from its ONNX at activate.

CUDA graphs (``cuda_graph=True``): on standard TensorRT the first call at a new shape runs once, then
the enqueue is captured and later calls at that shape replay it: one graph and one execution context per
shape, since a graph freezes its context's shapes and device-side state; a capture
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
from ..artifacts.trt import import_tensorrt, process_logger, refit_from_onnx
from ..errors import RunnerError
from .base import InputConstraint, Runner, TensorMeta, apply_manifest_input, format_shape
from .cuda_device import CudaDevice

if TYPE_CHECKING:
    import tensorrt

__all__ = ["TrtRunner", "engine_io", "rebuild_command", "fitting_profile", "profile_ranges"]


def engine_io(engine: "tensorrt.ICudaEngine") -> tuple[dict[str, InputConstraint], dict[str, TensorMeta]]:
    """Inputs (bounded by the union of the optimisation profiles' min/max) and outputs of a deserialised engine."""
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
                ranges = profile_ranges(engine, name)
                low = tuple(min(r[0][a] for r in ranges) for a in range(len(shape)))
                high = tuple(max(r[1][a] for r in ranges) for a in range(len(shape)))
            inputs[name] = InputConstraint(name, dtype, shape, low, high)
        else:
            outputs[name] = TensorMeta(dtype, shape)
    return inputs, outputs


def profile_ranges(engine: "tensorrt.ICudaEngine", name: str) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``[(min, max), ...]`` of input ``name`` in each optimisation profile, in profile order."""
    count = int(getattr(engine, "num_optimization_profiles", 1) or 1)
    out = []
    for index in range(count):
        low, _opt, high = (_dims(d) for d in engine.get_tensor_profile_shape(name, index))
        out.append((low, high))
    return out


def fitting_profile(ranges: dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]],
                    shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    """The first profile whose min/max admit every shape in ``shapes`` (``None``: none does)."""
    counts = {len(r) for r in ranges.values()} or {1}
    for index in range(max(counts)):
        if all(name not in ranges or (len(ranges[name][index][0]) == len(shape) and all(
                lo <= d <= hi for lo, d, hi in zip(ranges[name][index][0], shape, ranges[name][index][1])))
               for name, shape in shapes.items()):
            return index
    return None


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
        options = entry.get("options") or {}
        if options.get("version_compatible"):
            runtime.engine_host_code_allowed = True  # the plan embeds its lean runtime
        engine: tensorrt.ICudaEngine | None = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            built = f" (manifest: {entry.get('flavour')} {entry.get('version')})" if entry else ""
            raise RunnerError(f"cannot deserialise {self.path}: engine built by another TensorRT version or for "
                              f"another GPU{built}{logger.last()}",
                              f"a plan built by {flavour} {version} for {dev.name}",
                              f"rebuild it here: unetrt build {self.path.parent}, or "
                              + rebuild_command(self.manifest, entry.get("precision"), str(self.path.parent)))
        if options.get("weight_stripped"):
            onnx_path = self.path.parent / str(entry.get("onnx") or "model.onnx")
            refit_from_onnx(trt, engine, onnx_path, logger, entry.get("onnx_sha256"))
            self._note(f"weight-stripped plan refitted from {onnx_path.name} (unetrt refit writes the full plan)")
        self._state = {"trt": trt, "flavour": flavour, "logger": logger, "runtime": runtime, "engine": engine,
                       "device": dev, "stream": dev.new_stream(), "contexts": []}  # the stream makes the context current
        self._state["runtime_config"] = self._runtime_config(trt, flavour, engine)
        self._state["context"] = self._new_context()
        self._inputs, self._outputs = engine_io(engine)
        self._ranges = {n: profile_ranges(engine, n) for n, c in self._inputs.items() if None in c.shape}
        section = self.manifest.input if self.manifest else None
        self._inputs = {n: apply_manifest_input(c, section if len(c.shape) in (4, 5) else None)
                        for n, c in self._inputs.items()}
        self._capture = self.cuda_graph and flavour != "tensorrt-rtx"
        mem = int(getattr(engine, "device_memory_size_v2", None) or getattr(engine, "device_memory_size", 0) or 0)
        self._note(f"{flavour} {version}: {engine.num_optimization_profiles} profile(s), the fitting one selected "
                   f"per shape; {int(mem) / 2**20:.1f} MiB activation memory per context")

    def _new_context(self) -> Any:
        """A new execution context (with the runtime config, if any); kept until deactivate."""
        engine, config, logger = self._state["engine"], self._state.get("runtime_config"), self._state["logger"]
        context = (engine.create_execution_context(config) if config is not None
                   else engine.create_execution_context())
        if context is None:
            raise RunnerError(f"TensorRT could not create an execution context for {self.path}{logger.last()}",
                              "enough free GPU memory", "free GPU memory or use a smaller max shape")
        self._state["contexts"].append(context)
        return context

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
        return config

    def _manifest_entry(self) -> dict:
        entry = self.manifest.engine(self.path.name) if self.manifest else None
        return entry_dict(entry) if entry is not None else {}

    def _select_profile(self, ctx: Any, tensors: dict[str, Any]) -> None:
        """Switch ``ctx`` to the first optimisation profile that admits the input shapes (before shapes are set)."""
        if not self._ranges or int(self._state["engine"].num_optimization_profiles) < 2:
            return
        shapes = {n: tuple(int(d) for d in t.shape) for n, t in tensors.items()}
        index = fitting_profile(self._ranges, shapes)
        if index is None:
            listed = "; ".join(f"{n}: " + ", ".join(f"{format_shape(lo)}..{format_shape(hi)}" for lo, hi in r)
                               for n, r in self._ranges.items())
            raise RunnerError(f"no optimisation profile of {self.path.name} admits "
                              + ", ".join(f"{n} {format_shape(s)}" for n, s in shapes.items()),
                              f"a shape inside one profile ({listed})", "pass a shape one profile covers")
        if int(ctx.active_optimization_profile) != index:
            dev, stream = self._state["device"], self._state["stream"]
            if not ctx.set_optimization_profile_async(index, dev.handle(stream)):
                raise RunnerError(f"TensorRT refused optimisation profile {index}{self._state['logger'].last()}",
                                  "a profile no other context holds", "use one runner per concurrent caller")

    def _bind(self, tensors: dict[str, Any], ctx: Any = None) -> dict[str, Any]:
        """Select the profile, set input shapes and addresses, allocate outputs; return the output tensors."""
        dev, logger = self._state["device"], self._state["logger"]
        ctx = self._state["context"] if ctx is None else ctx
        self._select_profile(ctx, tensors)
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

    def _enqueue(self, ctx: Any = None) -> None:
        dev, stream = self._state["device"], self._state["stream"]
        ctx = self._state["context"] if ctx is None else ctx
        if not ctx.execute_async_v3(dev.handle(stream)):
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
            return {n: _host(t, self._note) for n, t in outputs.items()}
        for t in outputs.values():  # allocated on the private stream, used on the caller's
            dev.hand_over(t)
        return outputs

    def _graph(self, tensors: dict[str, Any]) -> tuple | None:
        """The captured graph of this input shape ``(graph, static inputs, outputs, context)``, captured on
        first use on a context of its own (a graph freezes its context's shapes and internal state, so
        rebinding one context for another shape would corrupt the graphs captured on it); ``None`` once a
        capture failed (plain execution from then on)."""
        key = tuple((n, tuple(t.shape)) for n, t in sorted(tensors.items()))
        if key in self._graphs or self._graph_failure is not None:
            return self._graphs.get(key)
        dev, stream = self._state["device"], self._state["stream"]
        ctx = self._new_context()
        static = {n: t.clone() for n, t in tensors.items()}
        outputs = self._bind(static, ctx)
        self._enqueue(ctx)  # uncaptured first run: TensorRT may allocate or sync on it
        stream.synchronize()
        graph, why = dev.capture(stream, lambda: ctx.execute_async_v3(dev.handle(stream)))
        if graph is None:
            self._graph_failure = why
            self._note(f"CUDA graph capture failed ({why}{self._state['logger'].last()}): running without "
                       f"CUDA graphs")
            return None
        self._graphs[key] = (graph, static, outputs, ctx)
        return self._graphs[key]

    def _replay(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """Replay the shape's graph (capturing it on first use); plain execution once a capture failed."""
        entry = self._graph(tensors)
        if entry is None:
            outputs = self._bind(tensors)
            self._enqueue()
            return outputs
        graph, static, outputs, _ctx = entry
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
        call): the bench records CUDA events around ``step.run()`` on ``step.stream``. With
        ``cuda_graph=True`` on standard TensorRT, ``run()`` replays the shape's captured graph.
        """
        from .cuda_device import DeviceStep

        self._require_active("device_step()")
        self._check_feed(feed)
        dev, stream = self._state["device"], self._state["stream"]
        graph = None
        with dev.on(stream):
            tensors = self._to_device(dict(feed))
            if self._capture:
                graph = self._graph(tensors)
            if graph is not None:
                _g, tensors, outputs, _ctx = graph
            else:
                outputs = self._bind(tensors)
        stream.synchronize()
        rtx = self._state["flavour"] == "tensorrt-rtx"

        def run() -> None:
            with dev.on(stream):
                if graph is not None:
                    graph[0].replay()
                else:
                    self._enqueue()

        note = ("TensorRT-RTX: warm-up covers its lazy kernel specialisation" if rtx else
                "CUDA graph replay" if graph is not None else
                f"CUDA graph capture failed: plain enqueue ({self._graph_failure})" if self._capture else None)
        return DeviceStep(run=run, stream=stream, events=dev.events, inputs=tensors, outputs=outputs,
                          min_warmup=self.min_warmup, note=note)

    def _deactivate(self) -> None:
        cache = self._state.get("runtime_cache")
        if cache is not None and self.runtime_cache is not None:
            from ..fileio import atomic_write_bytes

            self.runtime_cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.runtime_cache, bytes(cache.serialize()))
        dev = self._state.get("device")
        self._graphs.clear()  # graphs before the contexts they were captured on
        self._graph_failure = None
        # Contexts die first; the runtime cache and config outlive every context; the engine outlives
        # them; the runtime goes last.
        for key in ("context", "contexts", "runtime_config", "runtime_cache", "engine", "runtime"):
            self._state.pop(key, None)
        self._state.clear()
        if dev is not None:
            dev.release()


#: torch dtypes numpy has no equivalent of: such outputs come back to the host as float32.
_NUMPYLESS = ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu")


def _host(t: Any, note: Any) -> np.ndarray:
    """A device tensor as a numpy array; dtypes numpy lacks (bfloat16, float8) come back as float32."""
    name = str(t.dtype).replace("torch.", "")
    if name in _NUMPYLESS:
        note(f"output dtype {name} has no numpy equivalent: returned as float32")
        t = t.float()
    return t.cpu().numpy()


#: Untimed iterations a TensorRT-RTX engine needs before its lazily specialised kernels are in place.
RTX_MIN_WARMUP = 20
