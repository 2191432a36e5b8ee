"""Shared test helpers."""

from unetrt.errors import MissingDependencyError


def trt_available() -> bool:
    """Whether tensorrt or tensorrt_rtx imports (engine builds are possible)."""
    from unetrt.artifacts.trt import import_tensorrt

    try:
        import_tensorrt("auto")
        return True
    except MissingDependencyError:
        return False
