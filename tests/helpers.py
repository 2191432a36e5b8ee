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


def make_manifest(**sections):
    """A valid :class:`Manifest` with small defaults; ``sections`` replace top-level fields (as dicts)."""
    from unetrt.artifacts.manifest import Manifest

    data = {
        "format": "unetrt-manifest", "schema_version": 3,
        "model": {"arch": "milesial", "factory": None, "kwargs": {"width": 4}, "params": 1, "checkpoint": None,
                  "weights": "random-init"},
        "input": {"name": "input", "channels": 3, "dtype": "float32", "layout": "NCHW", "alignment": 16,
                  "min_size": 16, "dynamic": {"batch": True, "height": True, "width": True}, "static_shape": None,
                  "pad_to_alignment": True},
        "output": {"name": "logits", "classes": 2, "dtype": "float32", "geometry": "same"},
        "export": {"exporter": "torch.export", "opset": 18, "align_requested": "auto"},
        "onnx": {"path": "model.onnx", "sha256": "0" * 64},
        "verification": {"backend": "onnxruntime-cpu", "reference": "eager fp32", "performed": False,
                         "tolerance": {}, "passed": None},
    }
    data.update(sections)
    return Manifest.with_defaults(data)
