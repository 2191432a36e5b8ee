"""TensorRT access shared by the engine builder, the runtime and the inspector.

Everything here works without TensorRT installed: the module is imported lazily by
:func:`import_tensorrt`. TensorRT keeps the first logger a process registers (a second
``Runtime``/``Builder`` with another logger prints "new logger is ignored"), so there is one
:func:`process_logger` per TensorRT module, and callers read what it recorded since their
:meth:`reset`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from ..errors import EngineBuildError, MissingDependencyError

__all__ = ["FLAVOURS", "import_tensorrt", "inspect_engine", "parse_version", "probe_gpu_cc", "process_logger",
           "plan_problem", "refit_from_onnx"]

log = logging.getLogger("unetrt.tensorrt")

#: Flavour names (as recorded in the manifest) -> Python module.
FLAVOURS = {"tensorrt": "tensorrt", "tensorrt-rtx": "tensorrt_rtx"}
_ALIASES = {"auto": ("tensorrt", "tensorrt-rtx"), "tensorrt": ("tensorrt",), "tensorrt-rtx": ("tensorrt-rtx",),
            "rtx": ("tensorrt-rtx",)}
_EXTRAS = {"tensorrt": "pip install 'unetrt[gpu]' (TensorRT)",
           "tensorrt-rtx": "pip install 'unetrt[rtx]' (TensorRT-RTX)"}


def parse_version(text: str) -> tuple[int, int]:
    """``"10.12.0.36"`` -> ``(10, 12)`` (:class:`packaging.version.Version`); ``(0, 0)`` when it is no version."""
    try:
        release = Version(str(text)).release
    except InvalidVersion:
        return (0, 0)
    return (release + (0, 0))[0], (release + (0, 0))[1]


#: The tag a serialised plan starts with: TensorRT's and TensorRT-RTX's.
PLAN_TAGS = {b"ftrt": "tensorrt", b"vtrt": "tensorrt-rtx"}
_HEADER = 24  # tag, three 32-bit fields, 64-bit plan size (TensorRT-RTX records the whole plan's size there)


def plan_problem(path: Any) -> str | None:
    """Why the file at ``path`` is not a whole serialised plan, read from its header alone (no GPU, no
    TensorRT); ``None`` when the header looks right.

    Checks the tag (``ftrt``: TensorRT, ``vtrt``: TensorRT-RTX) and, for TensorRT-RTX plans, that the
    file is as long as the size the header records (a truncated copy is shorter).
    """
    import struct
    from pathlib import Path

    file = Path(path)
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(_HEADER)
    if head[:4] not in PLAN_TAGS:
        return (f"{file.name} is not a TensorRT plan (it starts with {head[:4]!r}, a plan with b'ftrt' "
                f"(TensorRT) or b'vtrt' (TensorRT-RTX))")
    if len(head) < _HEADER:
        return f"{file.name} is truncated: {size} bytes, shorter than a plan header ({_HEADER} bytes)"
    recorded = struct.unpack_from("<Q", head, 16)[0]
    if PLAN_TAGS[head[:4]] == "tensorrt-rtx" and recorded != size:
        return f"{file.name} is truncated or damaged: its header records {recorded:,} bytes, the file has {size:,}"
    return None


def import_tensorrt(flavour: str = "auto") -> tuple[Any, str, str]:
    """Import TensorRT or TensorRT-RTX.

    Args:
        flavour: ``"tensorrt"``, ``"tensorrt-rtx"`` (alias ``"rtx"``) or ``"auto"`` (TensorRT first,
            then TensorRT-RTX).

    Returns:
        ``(module, "tensorrt" | "tensorrt-rtx", version string)``.

    Raises:
        EngineBuildError: An unknown flavour name.
        MissingDependencyError: The requested flavour is not installed (names the extra to install).
    """
    wanted = _ALIASES.get(flavour)
    if wanted is None:
        raise EngineBuildError(f"unknown TensorRT flavour {flavour!r}", "'auto', 'tensorrt' or 'tensorrt-rtx'",
                               "pick one of those")
    for name in wanted:
        try:
            module = __import__(FLAVOURS[name])
        except (ImportError, OSError) as exc:
            log.debug("cannot import %s: %s", name, exc)
            continue
        if not hasattr(module, "Runtime"):  # e.g. a bare namespace package left by type stubs
            log.debug("%s imports but has no Runtime (%s): not a TensorRT installation", name,
                      getattr(module, "__path__", "?"))
            continue
        version = str(getattr(module, "__version__", "0"))
        if name == "tensorrt" and parse_version(version) < (10, 0):
            raise MissingDependencyError(f"TensorRT {version} is too old", "TensorRT >= 10",
                                         "pip install -U 'unetrt[gpu]'")
        return module, name, version
    raise MissingDependencyError(f"{' and '.join(wanted)} not installed", "an importable TensorRT flavour",
                                 " or ".join(_EXTRAS[n] for n in wanted))


def probe_gpu_cc(device: int = 0) -> tuple[int, int] | None:
    """The compute capability of CUDA device ``device`` as torch sees it, ``None`` without CUDA."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability(device)
        return int(major), int(minor)
    except (ImportError, RuntimeError, AssertionError):
        return None


def inspect_engine(path: Any, entry: Any = None, *, gpu: bool | None = None) -> dict[str, Any]:
    """Layer information from TensorRT's engine inspector (deserialising needs a GPU).

    The plan is opened by the flavour its manifest ``entry`` records (TensorRT first otherwise), with
    the process logger, and with ``engine_host_code_allowed`` for version-compatible plans. Layer
    detail (tactics, formats) needs a plan built with ``profiling_verbosity=DETAILED``.

    Returns:
        ``{"available": True, "json": ...}`` or ``{"available": False, "reason": ...}``.
    """
    from pathlib import Path

    from ..errors import UnetrtError

    entry = dict(entry or {})
    if gpu is None:
        gpu = probe_gpu_cc() is not None
    if not gpu:
        return {"available": False, "reason": "deserialising a plan needs a CUDA GPU (none here)"}
    try:
        trt, flavour, version = import_tensorrt(entry.get("flavour") or "auto")
    except UnetrtError as exc:
        return {"available": False, "reason": str(exc)}
    logger = process_logger(trt).reset()
    runtime = trt.Runtime(logger)
    if (entry.get("options") or {}).get("version_compatible"):
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
    if engine is None:
        return {"available": False, "reason": f"{flavour} {version} could not deserialise the plan (other version "
                                              f"or GPU){logger.last()}"}
    info = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    out: dict[str, Any] = {"available": True, "json": info}
    if (entry.get("options") or {}).get("profiling_verbosity") == "layer_names_only":
        out["note"] = "built without --detailed-profiling: layer names only"
    return out


def refit_from_onnx(trt: Any, engine: Any, onnx_path: "Path", logger: Any, sha256: str | None = None) -> None:
    """Load the weights of ``onnx_path`` into a weight-stripped (or refittable) ``engine`` in place
    (``trt.Refitter`` + ``trt.OnnxParserRefitter.refit_from_file`` + ``refit_cuda_engine``).

    Raises:
        RunnerError: The ONNX is missing or not the one the plan was built from, or TensorRT refused it.
    """
    from ..errors import RunnerError
    from ..fileio import sha256_file

    if not onnx_path.is_file():
        raise RunnerError(f"weight-stripped plan needs its ONNX weights: {onnx_path} is missing",
                          "the ONNX the plan was built from beside it", "copy it there, or rebuild: unetrt build DIR")
    if sha256 and sha256_file(onnx_path) != sha256:
        raise RunnerError(f"{onnx_path.name} is not the ONNX the weight-stripped plan was built from (sha256 differs)",
                          "the ONNX recorded in the manifest (REFIT_IDENTICAL needs identical weights)",
                          "restore that ONNX, or rebuild the plan: unetrt build DIR")
    refitter = trt.Refitter(engine, logger)
    parser = trt.OnnxParserRefitter(refitter, logger)
    if not parser.refit_from_file(str(onnx_path)):
        errors = "; ".join(" ".join(parser.get_error(i).desc().split()) for i in range(parser.num_errors))
        raise RunnerError(f"TensorRT could not read refit weights from {onnx_path}: {errors or 'no error given'}",
                          "the ONNX the plan was built from", "rebuild the plan: unetrt build DIR")
    if not refitter.refit_cuda_engine():
        missing = list(refitter.get_missing_weights())
        raise RunnerError(f"TensorRT could not refit the plan from {onnx_path}{logger.last()}",
                          "every refittable weight in the ONNX" + (f" (missing: {missing[:5]})" if missing else ""),
                          "rebuild the plan: unetrt build DIR")


_LOGGERS: dict[int, tuple[Any, Any]] = {}  # id(module) -> (module, logger); the module is kept alive


def process_logger(trt: Any) -> Any:
    """The one ``trt.ILogger`` of this process for the module ``trt``.

    It forwards every message to :mod:`logging`, keeps errors and warnings since the last
    :meth:`reset` for one-line failure reports, and records a Ctrl-C that lands while TensorRT calls
    back into Python in ``interrupted`` instead of unwinding through TensorRT's C++ frames.
    """
    if id(trt) not in _LOGGERS:
        _LOGGERS[id(trt)] = (trt, _logger_class(trt)())
    return _LOGGERS[id(trt)][1]


def _logger_class(trt: Any) -> type:
    class _Logger(trt.ILogger):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.reset()

        def reset(self) -> "_Logger":
            """Forget what was recorded; returns ``self``."""
            self.errors: list[str] = []
            self.warnings: list[str] = []
            self.interrupted = False
            return self

        def log(self, severity: Any, msg: str) -> None:
            try:
                text = " ".join(str(msg).split())
                if int(severity) <= int(trt.ILogger.Severity.ERROR):
                    self.errors = (self.errors + [text])[-50:]
                elif int(severity) == int(trt.ILogger.Severity.WARNING):
                    self.warnings = (self.warnings + [text])[-50:]
                log.debug("tensorrt[%s]: %s", getattr(severity, "name", severity), text)
            except KeyboardInterrupt:
                self.interrupted = True

        def summary(self) -> str:
            """The last errors (or warnings) joined into one line."""
            lines = self.errors[-3:] or self.warnings[-3:] or ["no error logged"]
            return " / ".join(lines)

        def last(self) -> str:
            """``"; TensorRT: <last errors>"`` or ``""``."""
            return f"; TensorRT: {' / '.join(self.errors[-2:])[:300]}" if self.errors else ""

    return _Logger
