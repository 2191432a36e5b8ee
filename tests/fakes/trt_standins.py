"""Stand-in TensorRT modules per flavour: TensorRT 10.x, TensorRT 11.x and TensorRT-RTX 1.7.

Each :func:`make_module` result carries the attribute set of the real bindings for that flavour, as read
from NVIDIA's headers (10.16, 11.1) and the installed ``tensorrt_rtx`` 1.7.1 wheel, and rejects what the
real bindings reject:

* enums are ``enum.Enum`` (not ints), numbered as in the headers; a member of another module's enum or a
  bare int passed to ``set_flag``/``set_compute_capability`` raises ``TypeError`` as pybind11 does;
* ``BuilderFlag.FP16``/``EXPLICIT_BATCH`` exist only on 10.x; ``REQUIRE_USER_ALLOCATION``,
  ``ComputeCapability``, ``CudaGraphStrategy``, ``IRuntimeConfig.create_runtime_cache``,
  ``IExecutionContext.is_stream_capturable`` only on TensorRT-RTX; ``create_runtime_config`` from 10.11;
* ``set_timing_cache`` returns False for a cache made on another device, and ``get_timing_cache`` is then
  None; ``set_input_shape``/``set_tensor_address`` return False for what TensorRT refuses;
* a plan deserialises only on the flavour and the exact version that built it (TensorRT compares every
  field of the library version); a version-compatible standard TensorRT plan also on a later release of
  the same major, with ``engine_host_code_allowed``; an RTX plan only on a GPU among its targets;
* a second logger passed to a ``Builder``/``Runtime`` is counted in ``module.ignored_loggers``.

Execution is real on CPU memory: ``execute_async_v3`` reads the input at its bound address and writes
``logits[:, k] = (k + 1) * input[:, k % C]`` at the output's address, so binding mistakes show up as
wrong numbers. Test knobs live on the module: ``gpu_cc``, ``device_name``, ``capturing`` (stream handles
being captured), ``events`` (object destruction order), ``calls``.
"""

from __future__ import annotations

import ctypes
import enum
import json
import types

import numpy as np

RTX_TARGETS = {"NONE": 0, "CURRENT": 1, "SM75": 75, "SM80": 80, "SM86": 86, "SM89": 89, "SM120": 120, "SM121": 121}
_FLAGS_10 = {"FP16": 0, "INT8": 1, "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4, "DISABLE_TIMING_CACHE": 5, "TF32": 6,
             "SPARSE_WEIGHTS": 7, "SAFETY_SCOPE": 8, "OBEY_PRECISION_CONSTRAINTS": 9,
             "PREFER_PRECISION_CONSTRAINTS": 10, "DIRECT_IO": 11, "REJECT_EMPTY_ALGORITHMS": 12,
             "VERSION_COMPATIBLE": 13, "EXCLUDE_LEAN_RUNTIME": 14, "FP8": 15, "ERROR_ON_TIMING_CACHE_MISS": 16,
             "BF16": 17, "DISABLE_COMPILATION_CACHE": 18, "STRIP_PLAN": 19, "REFIT_IDENTICAL": 20,
             "WEIGHT_STREAMING": 21, "INT4": 22, "REFIT_INDIVIDUAL": 23, "STRICT_NANS": 24, "MONITOR_MEMORY": 25,
             "FP4": 26, "EDITABLE_TIMING_CACHE": 27, "DISTRIBUTIVE_INDEPENDENCE": 28}
_FLAGS_11 = {"DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4, "DISABLE_TIMING_CACHE": 5, "TF32": 6, "SPARSE_WEIGHTS": 7,
             "SAFETY_SCOPE": 8, "DIRECT_IO": 11, "VERSION_COMPATIBLE": 12, "EXCLUDE_LEAN_RUNTIME": 13,
             "ERROR_ON_TIMING_CACHE_MISS": 15, "DISABLE_COMPILATION_CACHE": 17, "STRIP_PLAN": 18,
             "REFIT_IDENTICAL": 19, "WEIGHT_STREAMING": 20, "REFIT_INDIVIDUAL": 22, "STRICT_NANS": 23,
             "MONITOR_MEMORY": 24, "EDITABLE_TIMING_CACHE": 26, "DISTRIBUTIVE_INDEPENDENCE": 27}
_FLAGS_RTX = {**_FLAGS_11, "REQUIRE_USER_ALLOCATION": 28}
_DTYPES = {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "FP8": 6, "BF16": 7, "INT64": 8,
           "INT4": 9, "FP4": 10, "E8M0": 11}
_NP = {"FLOAT": np.float32, "HALF": np.float16}


def _enum(name: str, members: dict[str, int]) -> type[enum.Enum]:
    cls = enum.Enum(name, members)
    cls.__int__ = lambda self: self.value  # type: ignore[attr-defined]
    return cls


def make_module(flavour: str = "tensorrt", version: str = "10.16.0.1"):
    """A stand-in ``tensorrt`` (``flavour="tensorrt"``) or ``tensorrt_rtx`` module of ``version``."""
    rtx = flavour == "tensorrt-rtx"
    major_minor = tuple(int(x) for x in version.split(".")[:2])
    m = types.ModuleType("tensorrt_rtx" if rtx else "tensorrt")
    m.__version__ = version
    m.__file__ = f"<stand-in {flavour} {version}>"
    m.gpu_cc, m.device_name = (8, 6), "Stand-in GPU"
    m.capturing, m.recorded, m.events, m.calls, m.ignored_loggers = set(), {}, [], [], 0
    m.cuda_driver = not rtx  # TensorRT-RTX builds on CPU; refittable RTX builds still need the driver
    m._logger = None
    flags = _FLAGS_RTX if rtx else (_FLAGS_10 if major_minor[0] == 10 else _FLAGS_11)
    m.BuilderFlag = _enum("BuilderFlag", flags)
    m.NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag",
                                            {"STRONGLY_TYPED": 0} if rtx else
                                            {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1, "PREFER_JIT_PYTHON_PLUGINS": 2,
                                             "PREFER_AOT_PYTHON_PLUGINS": 3} if major_minor[0] == 10 else
                                            {"STRONGLY_TYPED": 0, "PREFER_JIT_PYTHON_PLUGINS": 1,
                                             "PREFER_AOT_PYTHON_PLUGINS": 2})
    m.DataType = _enum("DataType", _DTYPES)
    m.TensorIOMode = _enum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})
    m.ProfilingVerbosity = _enum("ProfilingVerbosity", {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2})
    m.MemoryPoolType = _enum("MemoryPoolType", {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "TACTIC_DRAM": 4})
    m.LayerInformationFormat = _enum("LayerInformationFormat", {"ONELINE": 0, "JSON": 1})
    m.ExecutionContextAllocationStrategy = _enum("ExecutionContextAllocationStrategy",
                                                 {"STATIC": 0, "ON_PROFILE_CHANGE": 1, "USER_MANAGED": 2})
    m.HardwareCompatibilityLevel = _enum("HardwareCompatibilityLevel",
                                         {"NONE": 0, "AMPERE_PLUS": 1, "SAME_COMPUTE_CAPABILITY": 2})
    m.SerializationFlag = _enum("SerializationFlag", {"EXCLUDE_WEIGHTS": 0, "EXCLUDE_LEAN_RUNTIME": 1,
                                                      "INCLUDE_REFIT": 2})
    if rtx:
        m.ComputeCapability = _enum("ComputeCapability", RTX_TARGETS)
        m.CudaGraphStrategy = _enum("CudaGraphStrategy", {"DISABLED": 0, "WHOLE_GRAPH_CAPTURE": 1})
        m.DynamicShapesKernelSpecializationStrategy = _enum("DynamicShapesKernelSpecializationStrategy",
                                                            {"LAZY": 0, "EAGER": 1, "NONE": 2})

    def check(value, enum_cls, what):
        if not isinstance(value, enum_cls):
            raise TypeError(f"{what}(): incompatible function arguments: {value!r} is not a {m.__name__}."
                            f"{enum_cls.__name__}")

    def use_logger(logger):
        if not isinstance(logger, m.ILogger):
            raise TypeError(f"{logger!r} is not a {m.__name__}.ILogger")
        if m._logger is None:
            m._logger = logger
        elif logger is not m._logger:
            m.ignored_loggers += 1
            m._logger.log(m.ILogger.Severity.WARNING, "[RT] new logger is ignored: the first one is kept")

    def log(severity, text):
        if m._logger is not None:
            m._logger.log(getattr(m.ILogger.Severity, severity), text)

    class ILogger:
        Severity = _enum("Severity", {"INTERNAL_ERROR": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "VERBOSE": 4})

        def __init__(self):
            self._base_init = True

        def log(self, severity, msg):  # pragma: no cover - subclasses implement it
            raise NotImplementedError

    for s in ILogger.Severity:
        setattr(ILogger, s.name, s)
    m.ILogger = ILogger

    class IProgressMonitor:
        def __init__(self):
            self._base_init = True

    m.IProgressMonitor = IProgressMonitor

    class _Tensor:
        def __init__(self, name, dtype, shape):
            self.name, self.dtype, self.shape = name, dtype, tuple(shape)

    class INetworkDefinition:
        def __init__(self, flags):
            self.flags, self.inputs, self.outputs, self.weights = flags, [], [], []

        num_inputs = property(lambda self: len(self.inputs))
        num_outputs = property(lambda self: len(self.outputs))

        def get_input(self, i):
            return self.inputs[i]

        def get_output(self, i):
            return self.outputs[i]

    class OnnxParser:
        def __init__(self, network, logger):
            use_logger(logger)
            self.network, self.num_errors = network, 0

        def parse_from_file(self, path):
            import onnx

            model = onnx.load(path, load_external_data=False)
            kinds = {onnx.TensorProto.FLOAT: m.DataType.FLOAT, onnx.TensorProto.FLOAT16: m.DataType.HALF}

            def tensor(v):
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
                return _Tensor(v.name, kinds[v.type.tensor_type.elem_type], dims)

            self.network.inputs = [tensor(v) for v in model.graph.input]
            self.network.outputs = [tensor(v) for v in model.graph.output]
            self.network.weights = sorted(t.name for t in model.graph.initializer)
            return True

    m.OnnxParser = OnnxParser

    class IOptimizationProfile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, min, opt, max):  # noqa: A002 - the binding's keyword names
            self.shapes[name] = [list(min), list(opt), list(max)]

    class ITimingCache:
        def __init__(self, data: bytes):
            text = bytes(data).decode() if data else f"tc:{m.device_name}"
            self.device = text.split(":", 1)[1]

        def serialize(self):
            return f"tc:{self.device}".encode()

    class IBuilderConfig:
        def __init__(self):
            self._flags = {m.BuilderFlag.TF32}  # TensorRT enables TF32 by default
            self._profiles, self._timing_cache = [], None
            self.profiling_verbosity = m.ProfilingVerbosity.LAYER_NAMES_ONLY
            self.builder_optimization_level, self.progress_monitor, self._pools = 3, None, {}
            self._hardware = m.HardwareCompatibilityLevel.NONE
            if rtx:
                self._targets: list = []

        def set_flag(self, flag):
            check(flag, m.BuilderFlag, "set_flag")
            self._flags.add(flag)

        def clear_flag(self, flag):
            check(flag, m.BuilderFlag, "clear_flag")
            self._flags.discard(flag)

        def get_flag(self, flag):
            check(flag, m.BuilderFlag, "get_flag")
            return flag in self._flags

        def set_memory_pool_limit(self, pool, size):
            check(pool, m.MemoryPoolType, "set_memory_pool_limit")
            self._pools[pool] = size

        def add_optimization_profile(self, profile):
            self._profiles.append(profile.shapes)
            return len(self._profiles) - 1

        def create_timing_cache(self, data):
            m.calls.append("create_timing_cache")
            return ITimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            m.calls.append("set_timing_cache")
            if cache.device != m.device_name and not ignore_mismatch:
                log("ERROR", "timing cache was created on a different device")
                return False
            self._timing_cache = cache
            return True

        def get_timing_cache(self):
            return self._timing_cache

        @property
        def hardware_compatibility_level(self):
            if rtx:
                log("WARNING", "getHardwareCompatibilityLevel() is unsupported in TensorRT-RTX.")
            return self._hardware

        @hardware_compatibility_level.setter
        def hardware_compatibility_level(self, level):
            check(level, m.HardwareCompatibilityLevel, "hardware_compatibility_level")
            if rtx:  # seen with tensorrt_rtx 1.7.1: a warning, the level stays NONE
                log("WARNING", "setHardwareCompatibilityLevel() is unsupported in TensorRT-RTX.")
                return
            self._hardware = level

        if rtx:
            @property
            def num_compute_capabilities(self):
                return len(self._targets)

            @num_compute_capabilities.setter
            def num_compute_capabilities(self, n):
                self._targets = [m.ComputeCapability.NONE] * n

            def set_compute_capability(self, cc, index):
                check(cc, m.ComputeCapability, "set_compute_capability")
                if not 0 <= index < len(self._targets):
                    log("ERROR", "IBuilderConfig::setComputeCapability: Error Code 3: API Usage Error (Parameter "
                                 "check failed, condition: index >= 0 && index < std::ssize(mConfig."
                                 "computeCapabilities)")
                    return False
                self._targets[index] = cc
                return True

    class Builder:
        def __init__(self, logger):
            use_logger(logger)

        if not rtx and major_minor[0] == 10:  # gone from TensorRT 11.1's headers and TensorRT-RTX's bindings
            platform_has_fast_fp16 = property(lambda self: True)

        def create_network(self, flags=0):
            known = sum(1 << int(f) for f in m.NetworkDefinitionCreationFlag)
            if flags & ~known:
                raise ValueError(f"unknown network creation flags {flags:#x}")
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            targets = [t.name for t in config._targets] if rtx else []
            refit = {"STRIP_PLAN", "REFIT", "REFIT_IDENTICAL"} & {f.name for f in config._flags}
            if "CURRENT" in targets or (refit and not m.cuda_driver):  # both seen with tensorrt_rtx 1.7.1 on a CPU
                log("ERROR", "cudaError 35: CUDA driver version is insufficient for CUDA runtime version")
                return None
            header = {"flavour": flavour, "version": m.__version__, "flags": sorted(f.name for f in config._flags),
                      "hardware": config._hardware.name, "build_cc": list(m.gpu_cc), "weights": network.weights,
                      "stripped": "STRIP_PLAN" in refit, "refittable": bool(refit),
                      "targets": targets, "profiles": config._profiles, "verbosity": config.profiling_verbosity.name,
                      "io": [[t.name, "input", t.dtype.name, list(t.shape)] for t in network.inputs]
                      + [[t.name, "output", t.dtype.name, list(t.shape)] for t in network.outputs]}
            return b"ftrt" + json.dumps(header).encode()

    m.Builder = Builder

    class IRuntimeCache:
        def __init__(self):
            self.data = b""

        def deserialize(self, buf):
            if not bytes(buf).startswith(f"rtxcache {version}".encode()):
                return False
            self.data = bytes(buf)
            return True

        def serialize(self):
            return f"rtxcache {version} kernels".encode()

        def __del__(self):
            m.events.append("runtime cache destroyed")

    class IRuntimeConfig:
        def __init__(self):
            self.strategy = m.ExecutionContextAllocationStrategy.STATIC
            if rtx:
                self.cuda_graph_strategy = m.CudaGraphStrategy.DISABLED
                self.dynamic_shapes_kernel_specialization_strategy = m.DynamicShapesKernelSpecializationStrategy.LAZY
                self._cache = None

        def set_execution_context_allocation_strategy(self, strategy):
            self.strategy = strategy

        def get_execution_context_allocation_strategy(self):
            return self.strategy

        if rtx:
            def create_runtime_cache(self):
                return IRuntimeCache()

            def set_runtime_cache(self, cache):
                self._cache = cache
                return True

            def get_runtime_cache(self):
                return self._cache

    class IExecutionContext:
        def __init__(self, engine, config):
            self.engine, self.config, self.shapes, self.addresses = engine, config, {}, {}
            self.active_optimization_profile = 0

        def set_optimization_profile_async(self, index, stream_handle):
            if not isinstance(stream_handle, int):
                raise TypeError("set_optimization_profile_async(): stream_handle must be an int")
            if not 0 <= index < self.engine.num_optimization_profiles:
                log("ERROR", f"setOptimizationProfileAsync: profile index {index} out of range")
                return False
            self.active_optimization_profile, self.shapes = index, {}
            return True

        def set_input_shape(self, name, shape):
            spec = self.engine._io.get(name)
            if spec is None or spec[0] != "input":
                log("ERROR", f"setInputShape: unknown input {name}")
                return False
            low, _, high = self.engine._profile(name, self.active_optimization_profile)
            shape = tuple(int(d) for d in shape)
            if len(shape) != len(low) or any(not lo <= d <= hi for d, lo, hi in zip(shape, low, high)):
                log("ERROR", f"setInputShape: {shape} outside the profile")
                return False
            self.shapes[name] = shape
            return True

        def set_tensor_address(self, name, ptr):
            if name not in self.engine._io or not ptr:
                log("ERROR", f"setTensorAddress: bad tensor {name!r} or null address")
                return False
            self.addresses[name] = int(ptr)
            return True

        def get_tensor_shape(self, name):
            kind, _, shape = self.engine._io[name]
            if kind == "input":
                return self.shapes.get(name, tuple(shape))
            source = next((n for n, v in self.engine._io.items() if v[0] == "input"), None)
            if source not in self.shapes:
                return tuple(shape)
            n, _, h, w = self.shapes[source]
            return (n, shape[1], h, w)

        def infer_shapes(self):
            return [n for n, v in self.engine._io.items() if v[0] == "input" and n not in self.shapes]

        def execute_async_v3(self, stream_handle):
            if not isinstance(stream_handle, int):
                raise TypeError("execute_async_v3(): stream_handle must be an int")
            if stream_handle in m.capturing and not self._capturable(stream_handle):
                log("ERROR", "enqueueV3: this enqueue cannot be captured into a CUDA graph")
                return False
            if self.infer_shapes() or set(self.engine._io) - set(self.addresses):
                log("ERROR", "enqueueV3: shapes or addresses not set")
                return False
            if not self.engine._weights_loaded:
                log("ERROR", "enqueueV3: the engine's weights were stripped and not refitted")
                return False
            shapes, addresses = dict(self.shapes), dict(self.addresses)  # what a capture freezes
            if stream_handle in m.capturing:
                # The kernels also read state the context keeps on the device (shapes, its activation
                # memory): replayed after the context was rebound for another shape, they compute garbage.
                m.recorded.setdefault(stream_handle, []).append(
                    lambda: self._run(shapes, addresses) if self.shapes == shapes else self._garbage(shapes, addresses))
            else:
                self._run(shapes, addresses)
            m.calls.append("execute_async_v3")
            return True

        def _garbage(self, shapes, addresses):
            for name, (kind, dt, shape) in self.engine._io.items():
                if kind == "output":
                    n, _, h, w = next(v for k, v in shapes.items())
                    _view(addresses[name], (n, shape[1], h, w), dt)[:] = np.nan

        def _run(self, shapes, addresses):
            (src, (_, sdt, _)), = [(n, v) for n, v in self.engine._io.items() if v[0] == "input"]
            x = _view(addresses[src], shapes[src], sdt)
            for name, (kind, dt, shape) in self.engine._io.items():
                if kind == "output":
                    n, _, h, w = shapes[src]
                    y = _view(addresses[name], (n, shape[1], h, w), dt)
                    for k in range(y.shape[1]):
                        y[:, k] = (k + 1) * x[:, k % x.shape[1]]

        def _capturable(self, stream):
            if not rtx:
                return True
            return "REQUIRE_USER_ALLOCATION" in self.engine._header["flags"]

        if rtx:
            def is_stream_capturable(self, stream):
                return self._capturable(stream)

        def __del__(self):
            m.events.append("context destroyed")

    class EngineInspector:
        def __init__(self, engine):
            self.engine = engine

        def get_engine_information(self, fmt):
            check(fmt, m.LayerInformationFormat, "get_engine_information")
            detailed = self.engine._header["verbosity"] == "DETAILED"
            layers = [{"Name": "conv1", "LayerType": "Convolution"} if detailed else "conv1"]
            return json.dumps({"Layers": layers})

    class ICudaEngine:
        def __init__(self, header):
            self._header = header
            self._weights_loaded = not header.get("stripped")
            self._io = {name: (kind, dt, shape) for name, kind, dt, shape in header["io"]}
            self.num_io_tensors = len(self._io)
            self.num_optimization_profiles = max(1, len(header["profiles"]))
            self.device_memory_size_v2 = 1 << 20
            if not rtx and major_minor[0] == 10:
                self.device_memory_size = 1 << 20

        def _profile(self, name, index=0):
            return self._header["profiles"][index][name]

        @property
        def refittable(self):
            return self._header["refittable"]

        def create_serialization_config(self):
            return ISerializationConfig(self._header)

        def serialize(self):
            return self.serialize_with_config(self.create_serialization_config())

        def serialize_with_config(self, config):
            header = dict(self._header)
            header["stripped"] = m.SerializationFlag.EXCLUDE_WEIGHTS in config._flags or not self._weights_loaded
            return b"ftrt" + json.dumps(header).encode()

        def get_tensor_name(self, i):
            return list(self._io)[i]

        def get_tensor_mode(self, name):
            return m.TensorIOMode.INPUT if self._io[name][0] == "input" else m.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return m.DataType[self._io[name][1]]

        def get_tensor_shape(self, name):
            return tuple(self._io[name][2])

        def get_tensor_profile_shape(self, name, index):
            return [tuple(s) for s in self._header["profiles"][index][name]]

        def create_execution_context(self, config=None):
            if config is not None and not isinstance(config, (IRuntimeConfig, m.ExecutionContextAllocationStrategy)):
                raise TypeError("create_execution_context(): incompatible function arguments")
            return IExecutionContext(self, config)

        def create_engine_inspector(self):
            return EngineInspector(self)

        if rtx or major_minor >= (10, 11):
            def create_runtime_config(self):
                return IRuntimeConfig()

    class Runtime:
        def __init__(self, logger):
            use_logger(logger)
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, data):
            data = bytes(data)
            if not data.startswith(b"ftrt"):
                log("ERROR", "magic tag does not match")
                return None
            header = json.loads(data[4:])
            compatible = "VERSION_COMPATIBLE" in header["flags"]
            if header["flavour"] != flavour:
                log("ERROR", f"plan of {header['flavour']} given to {flavour}")
                return None
            built, have = _release(header["version"]), _release(m.__version__)  # tests may change __version__
            if built != have and not (compatible and not rtx and built[0] == have[0] and have > built):
                log("ERROR", f"The engine plan file is not compatible with this version of TensorRT, expecting "
                             f"library version {m.__version__} got {header['version']}, please rebuild.")
                return None
            if compatible and not self.engine_host_code_allowed:
                log("ERROR", "engine contains host executable code but engine_host_code_allowed is False")
                return None
            if rtx and f"SM{m.gpu_cc[0]}{m.gpu_cc[1]}" not in header["targets"]:
                log("ERROR", f"no kernels for compute capability {m.gpu_cc}")
                return None
            here, built_on = tuple(m.gpu_cc), tuple(header.get("build_cc") or m.gpu_cc)
            level = header.get("hardware", "NONE")
            if not rtx and not (here >= (8, 0) if level == "AMPERE_PLUS" else here == built_on):
                log("ERROR", f"engine built for compute capability {built_on} (hardware compatibility {level}) "
                             f"cannot run on {here}")
                return None
            return ICudaEngine(header)

    m.Runtime = Runtime

    class ISerializationConfig:
        def __init__(self, header):
            self._flags = {m.SerializationFlag.EXCLUDE_WEIGHTS} if header.get("stripped") else set()
            if header.get("refittable"):
                self._flags.add(m.SerializationFlag.INCLUDE_REFIT)

        def set_flag(self, flag):
            check(flag, m.SerializationFlag, "set_flag")
            self._flags.add(flag)
            return True

        def clear_flag(self, flag):
            check(flag, m.SerializationFlag, "clear_flag")
            self._flags.discard(flag)
            return True

        def get_flag(self, flag):
            return flag in self._flags

    class Refitter:
        def __init__(self, engine, logger):
            if not isinstance(engine, ICudaEngine):
                raise TypeError("Refitter(): incompatible function arguments")
            use_logger(logger)
            if not engine.refittable:
                log("ERROR", "IRefitter: the engine is not refittable")
            self.engine, self.named = engine, set()

        def get_all_weights(self):
            return list(self.engine._header["weights"]) if self.engine.refittable else []

        def get_missing_weights(self):
            return [w for w in self.get_all_weights() if w not in self.named]

        def refit_cuda_engine(self):
            if not self.engine.refittable or self.get_missing_weights():
                log("ERROR", "refitCudaEngine: missing weights or engine not refittable")
                return False
            self.engine._weights_loaded = True
            m.calls.append("refit_cuda_engine")
            return True

    class OnnxParserRefitter:
        def __init__(self, refitter, logger):
            if not isinstance(refitter, Refitter):
                raise TypeError("OnnxParserRefitter(): incompatible function arguments")
            use_logger(logger)
            self.refitter, self.errors = refitter, []

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, i):
            return types.SimpleNamespace(desc=lambda: self.errors[i])

        def refit_from_file(self, path):
            import onnx

            model = onnx.load(path, load_external_data=False)
            names = {t.name for t in model.graph.initializer}
            unknown = names - set(self.refitter.get_all_weights())
            if unknown or not self.refitter.engine.refittable:
                self.errors.append(f"weights {sorted(unknown)} are not refittable weights of the engine")
                return False
            self.refitter.named |= names
            return True

    m.Refitter, m.OnnxParserRefitter, m.ISerializationConfig = Refitter, OnnxParserRefitter, ISerializationConfig
    m.ICudaEngine, m.IExecutionContext, m.IRuntimeConfig, m.IBuilderConfig = (
        ICudaEngine, IExecutionContext, IRuntimeConfig, IBuilderConfig)
    if rtx:
        m.IRuntimeCache = IRuntimeCache
    return m


def _release(text: str) -> tuple[int, ...]:
    """What TensorRT compares when it deserialises: every field of the library version."""
    parts = [int(x) for x in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _view(address: int, shape, dtype_name: str) -> np.ndarray:
    dtype = np.dtype(_NP[dtype_name])
    count = int(np.prod(shape))
    buf = (ctypes.c_byte * (count * dtype.itemsize)).from_address(address)
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


FLAVOURS = {"10": ("tensorrt", "10.16.0.1"), "11": ("tensorrt", "11.1.0.3"), "rtx": ("tensorrt-rtx", "1.7.1.116")}


def identity_onnx(path, classes: int = 3, fp16: bool = False, weights: bool = False):
    """A tiny ONNX (input NxCxHxW -> logits) with dynamic N/H/W: enough for the stand-in parser; ``weights``
    adds an initializer (what a refit loads)."""
    import onnx
    from onnx import TensorProto, helper

    elem = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    x = helper.make_tensor_value_info("input", elem, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("logits", elem, ["N", classes, "H", "W"])
    init = [helper.make_tensor("w", elem, [1], [1.0])] if weights else []
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["logits"], name="id")], "g", [x], [y],
                              initializer=init)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def install(monkeypatch, *keys):
    """Put stand-ins for ``keys`` (``"10"``, ``"11"``, ``"rtx"``) in ``sys.modules``; hide the real ones.

    Returns ``{key: module}``.
    """
    import sys

    for name in ("tensorrt", "tensorrt_rtx"):
        monkeypatch.setitem(sys.modules, name, None)
    out = {}
    for key in keys:
        module = make_module(*FLAVOURS[key])
        monkeypatch.setitem(sys.modules, module.__name__, module)
        out[key] = module
    return out
