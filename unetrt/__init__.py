"""unetrt: UNet segmentation models from PyTorch to deployment.

Public API (re-exports only, imported on first use so that ``import unetrt`` and ``unetrt --help``
stay fast): the model zoo, the export chain, the runtime and parity comparison.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import UnetrtError

__version__ = "0.1.0"

_EXPORTS = {
    "ExportConfig": "exporter", "ExportResult": "exporter", "export": "exporter",
    "create_model": "models", "get_spec": "models", "list_models": "models",
    "compare": "parity", "load": "runtime", "Manifest": "artifacts",
}

__all__ = ["UnetrtError", "__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'unetrt' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
