"""unetrt: UNet segmentation models from PyTorch to deployment.

Public API (re-exports only, imported on first use so that ``import unetrt`` and ``unetrt --help``
stay fast): the model zoo, the export chain, the runtime and parity comparison.
"""

from __future__ import annotations

from ._lazy import lazy_exports
from .errors import UnetrtError

__version__ = "0.1.0"

_EXPORTS = {
    "ExportConfig": "exporter", "ExportResult": "exporter", "export": "exporter",
    "create_model": "models", "get_spec": "models", "list_models": "models",
    "compare": "parity", "load": "runtime", "Manifest": "artifacts.manifest",
}

__all__ = ["UnetrtError", "__version__", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
