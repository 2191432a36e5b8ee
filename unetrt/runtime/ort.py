"""ONNX Runtime runner (CPU, CUDA or TensorRT execution provider)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..artifacts.dtypes import ORT_DTYPES
from ..artifacts.ort import LEVELS as _LEVELS
from ..artifacts.ort import import_onnxruntime, make_session
from ..artifacts.manifest import Manifest
from ..errors import MissingDependencyError, RunnerError
from .base import InputConstraint, Runner, TensorMeta, apply_manifest_input, to_numpy

__all__ = ["OrtRunner", "resolve_providers"]

#: Our short provider names -> ONNX Runtime's.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider"}
#: What a single short name expands to (the providers ORT falls back to for nodes it cannot place).
_CHAINS = {"cpu": ("cpu",), "cuda": ("cuda", "cpu"), "tensorrt": ("tensorrt", "cuda", "cpu"),
           "trt": ("tensorrt", "cuda", "cpu")}


_ort = import_onnxruntime


def resolve_providers(providers: str | Sequence[str]) -> list[str]:
    """Map short names (``"cpu"``, ``"cuda"``, ``"tensorrt"``) or ORT names to ORT provider names.

    A single short name expands to its fallback chain (``"tensorrt"`` -> TensorRT, CUDA, CPU);
    a sequence is taken as given, in priority order.

    Raises:
        RunnerError: An unknown provider name.
    """
    names = list(_CHAINS.get(providers.lower(), (providers,))) if isinstance(providers, str) else list(providers)
    known = set(PROVIDERS.values())
    out = []
    for name in names:
        full = PROVIDERS.get(str(name).lower(), name)
        if full not in known and not str(full).endswith("ExecutionProvider"):
            raise RunnerError(f"unknown ONNX Runtime provider {name!r}",
                              "'cpu', 'cuda', 'tensorrt' or an ORT name such as 'CUDAExecutionProvider'",
                              "fix providers")
        if full not in out:
            out.append(full)
    if not out:
        raise RunnerError("no ONNX Runtime provider given", "e.g. providers='cpu'", "fix providers")
    return out


#: TensorRT EP options that carry no ``trt_`` prefix in ONNX Runtime (prefixing them makes unknown options).
#: ``has_user_compute_stream`` is a CUDA EP key only: the TensorRT EP's Python parser throws "Invalid TensorRT
#: EP option" on it (``user_compute_stream`` alone sets the flag there). Checked against the keys of the real
#: onnxruntime-gpu wheel in tests/runtime/test_ort_ep_options.py.
TRT_EP_UNPREFIXED = frozenset({"device_id", "user_compute_stream"})
_TRT_EP_REFUSED = {"has_user_compute_stream": "user_compute_stream alone (it sets the flag)"}
GPU_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider"})
#: The TensorRT libraries onnxruntime-gpu 1.31's TensorRT EP links (ELF NEEDED of its provider library; the
#: fixture tests/fixtures/ort_ep_options.json records them from the real wheel).
TRT_EP_LIBRARIES = ("libnvinfer.so.10", "libnvonnxparser.so.10")


def load_gpu_libraries(providers: Sequence[str]) -> list[str]:
    """Put the pip-installed CUDA / cuDNN / cuBLAS / TensorRT libraries in the process before a CUDA or
    TensorRT EP session is created; returns notes on what was done.

    onnxruntime-gpu's provider libraries find ``libcudart.so.13``, ``libcublas.so.13``, ``libcudnn.so.9``
    and ``libnvinfer.so.10`` only on the loader path, and pip puts them in ``site-packages/nvidia/`` and
    ``tensorrt_libs/``, which are not on it: ``onnxruntime.preload_dlls()`` (ORT >= 1.21) loads the CUDA and
    cuDNN ones; the TensorRT ones are loaded from ``tensorrt_libs`` (global symbols, as the EP needs).
    """
    import ctypes

    wanted = [p for p in providers if p in GPU_PROVIDERS]
    if not wanted:
        return []
    ort, notes = _ort(), []
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        notes.append(f"onnxruntime {getattr(ort, '__version__', '?')} has no preload_dlls (ORT >= 1.21): CUDA and "
                     f"cuDNN must be on the loader path")
    else:
        preload(cuda=True, cudnn=True, msvc=False)
    if "TensorrtExecutionProvider" in wanted:
        try:
            import tensorrt_libs  # the tensorrt-cu13 wheel's library folder
        except ImportError:
            notes.append(f"tensorrt_libs not installed: {', '.join(TRT_EP_LIBRARIES)} must be on the loader path "
                         f"(pip install 'unetrt[gpu]')")
            return notes
        folder = Path(next(iter(tensorrt_libs.__path__)))
        for name in TRT_EP_LIBRARIES:
            path = folder / name
            if not path.is_file():
                notes.append(f"{name} not in {folder} (another TensorRT major there?): the TensorRT EP cannot load")
                continue
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    return notes


def _provider_options(name: str, trt_options: Mapping[str, Any] | None, cuda_options: Mapping[str, Any] | None,
                      tf32: bool = False, stream: int | None = None) -> dict[str, Any]:
    """ORT provider options: ``trt_`` added only where ORT spells it, TF32 explicit, a user stream if given."""
    if name == "TensorrtExecutionProvider":
        for key in trt_options or {}:
            if key.removeprefix("trt_") in _TRT_EP_REFUSED:
                raise RunnerError(f"{key!r} is not an ONNX Runtime TensorRT EP option",
                                  _TRT_EP_REFUSED[key.removeprefix("trt_")], f"drop {key!r} from trt_options")
        opts = {(k if k.startswith("trt_") or k in TRT_EP_UNPREFIXED else f"trt_{k}"): v
                for k, v in (trt_options or {}).items()}
        if "trt_engine_cache_path" in opts:
            Path(opts["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
            opts.setdefault("trt_engine_cache_enable", True)
        if "trt_timing_cache_path" in opts:
            opts.setdefault("trt_timing_cache_enable", True)
        if stream is not None:
            opts.setdefault("user_compute_stream", str(stream))
        return opts
    if name == "CUDAExecutionProvider":
        opts = dict(cuda_options or {})
        opts.setdefault("use_tf32", int(bool(tf32)))  # ORT's CUDA EP defaults to TF32 on
        if stream is not None:
            opts.setdefault("user_compute_stream", str(stream))
        return opts
    return {}


class OrtRunner(Runner):
    """Runs an ONNX file with ONNX Runtime.

    Input constraints come from the graph's dims, tightened by ``manifest.input`` (min size,
    alignment) or, without a manifest, by the ``unetrt.input`` entry the exporter writes into the
    ONNX ``metadata_props``; failing both, from the graph alone (said in ``notes``).

    Args:
        onnx_path: The ``.onnx`` file.
        providers: ``"cpu"``, ``"cuda"`` (CUDA then CPU), ``"tensorrt"`` (TensorRT, CUDA, CPU) or a
            sequence of short or ORT names in priority order.
        threads: Intra-op threads (``None``: ONNX Runtime's default).
        graph_optimization_level: ``"disable"``, ``"basic"``, ``"extended"`` or ``"all"``.
        trt_options: TensorRT EP options, with or without the ``trt_`` prefix, e.g.
            ``{"fp16_enable": True, "engine_cache_path": "cache/"}`` (a cache path enables the cache).
        cuda_options: CUDA EP options (``device_id``, ``gpu_mem_limit``, ...).
        tf32: Let the CUDA EP use TF32 for FP32 convolutions and matmuls (``use_tf32``; off by
            default here so FP32 rows are FP32, while ONNX Runtime's own default is on).
        user_stream: Run the CUDA / TensorRT EP on a stream of ours (``user_compute_stream``), so
            :meth:`device_step` timings can record CUDA events on it.
        manifest: The artifact's :class:`~unetrt.artifacts.manifest.Manifest`.
        name: Label for reports.

    Raises:
        RunnerError: The file does not exist, or an unknown provider name.
        MissingDependencyError: A requested provider is not in this ONNX Runtime build.
    """

    def __init__(self, onnx_path: str | os.PathLike, providers: str | Sequence[str] = ("cpu",), *,
                 threads: int | None = None, graph_optimization_level: str = "all",
                 trt_options: Mapping[str, Any] | None = None, cuda_options: Mapping[str, Any] | None = None,
                 manifest: Manifest | None = None, name: str | None = None, tf32: bool = False,
                 user_stream: bool = False):
        self.providers = resolve_providers(providers)
        short = {v: k for k, v in PROVIDERS.items() if k != "trt"}
        super().__init__(name or "ort-" + short.get(self.providers[0], self.providers[0]), manifest)
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise RunnerError(f"ONNX file {self.path} does not exist", "an existing .onnx file", "check the path")
        if graph_optimization_level not in _LEVELS:
            raise RunnerError(f"unknown graph_optimization_level {graph_optimization_level!r}",
                              f"one of {', '.join(_LEVELS)}", "fix graph_optimization_level")
        if threads is not None and threads < 1:
            raise RunnerError(f"threads={threads}", "a positive integer or None", "fix threads")
        available = _ort().get_available_providers()
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise MissingDependencyError(f"ONNX Runtime provider(s) {', '.join(missing)} not available",
                                         f"one of the installed ones: {', '.join(available)}",
                                         "on a CUDA machine pip uninstall onnxruntime, then pip install "
                                         "'unetrt[gpu]'; or use providers='cpu'")
        self.threads, self.level = threads, graph_optimization_level
        self.tf32, self.user_stream = bool(tf32), bool(user_stream)
        self._options = (trt_options, cuda_options)
        self._provider_opts = [_provider_options(p, trt_options, cuda_options, self.tf32) for p in self.providers]
        self.session: Any = None
        self._device: Any = None
        self._stream: Any = None

    def _activate(self) -> None:
        provider_opts = self._provider_opts
        if self.user_stream and self.providers[0] in GPU_PROVIDERS:
            self._device = _device(0, self.path)
            self._stream = self._device.new_stream()
            handle = self._device.handle(self._stream)
            provider_opts = [_provider_options(p, *self._options, self.tf32, handle) for p in self.providers]
        for note in load_gpu_libraries(self.providers):
            self._note(note)
        try:
            session = make_session(self.path, list(zip(self.providers, provider_opts)), threads=self.threads,
                                   level=self.level, quiet=False)
        except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
            raise RunnerError(f"ONNX Runtime cannot load {self.path}: {' '.join(str(exc).split())[:300]}",
                              "a valid ONNX model", "re-export it (unet-export ...)") from None
        used = session.get_providers()
        if used[0] != self.providers[0]:
            raise RunnerError(f"ONNX Runtime did not enable {self.providers[0]} (session uses {', '.join(used)})",
                              f"{self.providers[0]} usable (CUDA/cuDNN/TensorRT libraries found)",
                              "check the CUDA/TensorRT installation or use providers='cpu'")
        self.session = session
        section: Any = self.manifest.input if self.manifest else None
        if section is None:
            section = self._metadata_input(session)
        self._inputs = {}
        for arg in session.get_inputs():
            spec = InputConstraint(arg.name, ORT_DTYPES.get(arg.type, arg.type), _dims(arg.shape))
            self._inputs[arg.name] = apply_manifest_input(spec, section if len(spec.shape) in (4, 5) else None)
        self._outputs = {o.name: TensorMeta(ORT_DTYPES.get(o.type, o.type), _dims(o.shape))
                         for o in session.get_outputs()}

    def _metadata_input(self, session) -> dict | None:
        props = session.get_modelmeta().custom_metadata_map
        try:
            section = json.loads(props["unetrt.input"])
        except (KeyError, ValueError):
            self._note("no manifest and no unetrt metadata: inputs are checked against the ONNX graph's dims only")
            return None
        self._note("no manifest: input min size and alignment taken from the ONNX metadata_props")
        return section

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _infer(self, feed: dict[str, Any], to_host: bool) -> dict[str, Any]:
        arrays = {n: to_numpy(v) for n, v in feed.items()}
        values = self.session.run(None, arrays)
        return dict(zip(self._outputs, values))

    def device_step(self, feed: Mapping[str, Any]):
        """Bind ``feed`` and pre-allocated outputs once (ONNX Runtime I/O binding); ``run()`` only runs.

        On the CUDA / TensorRT EP the buffers are CUDA tensors and nothing crosses the PCIe bus per
        run; on CPU they are host tensors. Returns a :class:`~unetrt.runtime.cuda_device.DeviceStep`.
        """
        import numpy as np

        from .cuda_device import DeviceStep

        self._require_active("device_step()")
        self._check_feed(feed)
        gpu = self.providers[0] in GPU_PROVIDERS
        device: Any = self._device if gpu and self._device is not None else (_device(0, self.path) if gpu else None)
        import torch

        where = device.device if device is not None else torch.device("cpu")
        kind = "cuda" if gpu else "cpu"
        inputs = {n: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v).to(where).contiguous()
                  for n, v in feed.items()}
        io = self.session.io_binding()
        for name, t in inputs.items():
            io.bind_input(name, kind, 0, np.dtype(self._inputs[name].dtype), tuple(t.shape), t.data_ptr())
        for name in self._outputs:
            io.bind_output(name, kind)
        self.session.run_with_iobinding(io)  # once, to learn the output shapes
        outputs = {}
        for name, value in zip(self._outputs, io.get_outputs()):
            meta = self._outputs[name]
            outputs[name] = torch.empty(tuple(value.shape()), dtype=getattr(torch, meta.dtype), device=where)
            io.bind_output(name, kind, 0, np.dtype(meta.dtype), tuple(outputs[name].shape), outputs[name].data_ptr())
        stream = self._stream if gpu else None
        if gpu and stream is None:
            stream = device.new_stream()
        note = None if (not gpu or self._stream is not None) else \
            "ONNX Runtime runs on its own stream (user_stream=False): events bracket a synchronised run"
        return DeviceStep(run=lambda: self.session.run_with_iobinding(io), stream=stream,
                          events=device.events if device is not None else _host_events, inputs=inputs,
                          outputs=outputs, note=note)

    def _deactivate(self) -> None:
        self.session = None
        self._stream = None
        if self._device is not None:
            self._device.release()
        self._device = None


def _device(index: int, path: Path):
    """The CUDA device of the GPU providers (tests put a CPU stand-in here)."""
    from .cuda_device import CudaDevice

    return CudaDevice(index, what=f"ONNX Runtime GPU run of {path.name}")


def _host_events():
    from .cuda_device import HostEvent

    return HostEvent(), HostEvent()


def _dims(shape) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d >= 0 else None for d in shape)
