"""unetrt: UNet segmentation models from PyTorch to deployment.

Public API (re-exports only): the model zoo, the export chain and parity comparison.
"""

from .errors import UnetrtError
from .exporter import ExportConfig, ExportResult, export
from .models import create_model, get_spec, list_models
from .parity import compare

__version__ = "0.1.0"

__all__ = ["UnetrtError", "ExportConfig", "ExportResult", "export", "create_model", "get_spec", "list_models",
           "compare", "__version__"]
