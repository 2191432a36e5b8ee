"""Write the full plans of weight-stripped engines (``unetrt refit``).

A weight-stripped plan (``unet-export --strip-weights``: ``BuilderFlag.STRIP_PLAN`` + ``REFIT_IDENTICAL``)
ships without its weights; the runner refits it from the ONNX at every activation. ``refit_engines``
does it once: deserialise (needs the GPU and the TensorRT that built it), refit from the recorded ONNX
(``Refitter`` + ``OnnxParserRefitter``), serialise with the weights (``SerializationFlag.EXCLUDE_WEIGHTS``
cleared), and swap the full plans and the manifest in only when every engine succeeded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..artifacts.manifest import Manifest
from ..artifacts.trt import import_tensorrt, process_logger, refit_from_onnx
from ..errors import RunnerError
from ..fileio import atomic_write_bytes
from .cuda_device import CudaDevice

__all__ = ["refit_engines"]


def _device(index: int, what: str) -> CudaDevice:
    """The CUDA device the plans are deserialised on (tests put a CPU stand-in here)."""
    return CudaDevice(index, what=what)


def refit_engines(export_dir: str | os.PathLike, *, device: int = 0) -> list[str]:
    """Replace the weight-stripped plans listed in ``export_dir``'s manifest by full plans.

    Returns:
        The file names of the plans written.

    Raises:
        RunnerError: No weight-stripped plan, no GPU, a plan this TensorRT cannot open, or a refit failure
            (nothing is changed then).
    """
    directory = Path(export_dir)
    manifest = Manifest.read(directory)
    stripped = [e for e in manifest.engines if e.options.get("weight_stripped")]
    if not stripped:
        raise RunnerError(f"no weight-stripped engine in {directory}", "an export built with --strip-weights",
                          "nothing to refit: its plans already hold their weights")
    dev = _device(device, f"refitting {stripped[0].path}")
    staged: list[tuple[Path, Path]] = []
    updates = {}
    try:
        for entry in stripped:
            trt, flavour, version = import_tensorrt(entry.flavour)
            logger = process_logger(trt).reset()
            runtime = trt.Runtime(logger)
            if entry.options.get("version_compatible"):
                runtime.engine_host_code_allowed = True
            engine = runtime.deserialize_cuda_engine((directory / entry.path).read_bytes())
            if engine is None:
                raise RunnerError(f"cannot deserialise {entry.path} on {dev.name} with {flavour} {version}"
                                  f"{logger.last()}", f"the TensorRT that built it ({entry.flavour} {entry.version})",
                                  f"rebuild it here instead: unetrt build {directory}")
            refit_from_onnx(trt, engine, directory / entry.onnx, logger, entry.onnx_sha256)
            config = engine.create_serialization_config()
            config.clear_flag(trt.SerializationFlag.EXCLUDE_WEIGHTS)
            data = bytes(memoryview(engine.serialize_with_config(config)).cast("B"))
            tmp = directory / f".{entry.path}.refit"
            staged.append((tmp, directory / entry.path))
            atomic_write_bytes(tmp, data)
            updates[entry.path] = {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
                                   "options": {**entry.options, "weight_stripped": False,
                                               "refitted_from": entry.onnx}}
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        dev.release()
    for tmp, final in staged:
        os.replace(tmp, final)
    from dataclasses import replace

    manifest.engines = [replace(e, **updates[e.path]) if e.path in updates else e for e in manifest.engines]
    manifest.write(directory)
    return list(updates)
