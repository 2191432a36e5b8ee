"""Optional imports of the serving packages, with one clear error when they are missing."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from ..errors import MissingDependencyError

_EXTRA = "pip install 'unetrt[serve]'"


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the ``serve`` extra.

    Args:
        module: Dotted module name (``"tritonclient.http"``).
        what: What needs it, for the message (``"the Triton HTTP client"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0].replace("_", "-")
        raise MissingDependencyError(f"{what} needs {package}, which is not installed ({exc.name or module})",
                                     "the serving extra (nvidia-pytriton, tritonclient[http,grpc])", _EXTRA) from None


def model_config_pb2() -> ModuleType:
    """``tritonclient.grpc.model_config_pb2`` (Triton's ``ModelConfig`` protobuf)."""
    return require("tritonclient.grpc.model_config_pb2", "writing Triton model configurations")


def tritonserver_dist() -> Path:
    """The ``tritonserver`` distribution shipped inside the ``nvidia-pytriton`` wheel (``bin/``,
    ``backends/python/``, ``python_backend_stubs/<python version>/``)."""
    try:
        spec = importlib.util.find_spec("pytriton")
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("starting a Triton server needs nvidia-pytriton (its tritonserver binary), "
                                     "which is not installed", "the serving extra", _EXTRA)
    root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    if not (root / "bin" / "tritonserver").is_file():
        raise MissingDependencyError(f"no tritonserver binary in {root}", "nvidia-pytriton's wheel layout "
                                     "(tritonserver/bin/tritonserver)", "reinstall: " + _EXTRA)
    return root
