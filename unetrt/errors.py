"""Exceptions raised by unetrt.

Every user-facing failure is a :class:`UnetrtError` whose message is one line of the form
``what failed | what was expected | how to fix``. The CLI turns these into a clean error
line and a non-zero exit; anything else keeps its traceback.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


def format_message(what: str, expected: str | None = None, fix: str | None = None) -> str:
    """Join the three parts of an error message into one line."""
    parts = [" ".join(str(what).split())]
    if expected:
        parts.append("expected " + " ".join(str(expected).split()))
    if fix:
        parts.append(" ".join(str(fix).split()))
    return " | ".join(parts)


class UnetrtError(Exception):
    """Base class of every error unetrt raises on bad input or failed checks.

    Args:
        what: What failed.
        expected: What was expected instead.
        fix: How to fix it.
    """

    def __init__(self, what: str, expected: str | None = None, fix: str | None = None):
        self.what, self.expected, self.fix = what, expected, fix
        super().__init__(format_message(what, expected, fix))


class UnknownModelError(UnetrtError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ModelConfigError(UnetrtError, ValueError):
    """A model got a keyword argument it does not take, or a value it cannot use."""


class RegistrationError(UnetrtError, ValueError):
    """A registration (model variant) is malformed or clashes with an existing one."""


class DataError(UnetrtError, ValueError):
    """Synthetic-data parameters or a packaged data asset are unusable."""


class ModelLoadError(UnetrtError):
    """A user model factory (``pkg.module:factory``) could not be imported or called."""


class CheckpointError(UnetrtError):
    """A checkpoint is missing, corrupt, unsafe or does not match the model."""


class ExportError(UnetrtError):
    """The model could not be exported to an exact ONNX graph."""


class AlignmentError(ExportError):
    """The requested alignment or input size is not compatible with the model."""


class ParityError(ExportError):
    """An exported artifact does not reproduce eager PyTorch within tolerance."""

    def __init__(self, what: str, expected: str | None = None, fix: str | None = None,
                 table: str | None = None):
        super().__init__(what, expected, fix)
        self.table = table


class OutputError(UnetrtError):
    """The output location cannot be used (not writable, or non-empty without --force)."""


class MissingDependencyError(UnetrtError, ImportError):
    """An optional dependency is not installed."""


class EngineBuildError(UnetrtError):
    """A TensorRT engine could not be built."""


class ProfileError(EngineBuildError, ValueError):
    """An optimisation profile (min/opt/max shapes) is malformed or does not fit the network."""


class RunnerError(UnetrtError):
    """A runner cannot be built, activated or run (missing backend or GPU, unreadable or mismatched artifact)."""


class InputError(RunnerError, ValueError):
    """An inference input or image does not match what the model accepts (name, rank, dtype, shape)."""


class ManifestError(UnetrtError):
    """A ``manifest.json`` is missing, unreadable, of an unknown or newer schema version, or has a missing or
    wrongly typed field."""


class ServeError(UnetrtError):
    """A Triton model repository cannot be written, or a Triton server cannot be started or reached."""


class CalibrationError(ExportError):
    """Calibration inputs for FP16/INT8 are missing, unreadable or do not fit the model."""


class QuantizationError(ExportError):
    """An INT8 graph cannot be produced, or is not in the Q/DQ form TensorRT and ONNX Runtime take."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during an export: unwinds like Ctrl-C, so staging directories and locks are removed."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the duration (main thread only; elsewhere a no-op), so an
    export, a prediction run or a server start-up unwinds like Ctrl-C and leaves nothing half-written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ArtifactError(UnetrtError, ValueError):
    """An artifact file (ONNX, engine) is unreadable, truncated or not what its manifest says."""
