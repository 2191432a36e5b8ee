"""The UNet zoo: every variant behind one registry.

The registry (:mod:`unetrt.models.registry`) knows no variant; importing this package imports
each family module, which registers its variants.
"""

from ..errors import ModelConfigError
from . import bn_unet, milesial, paper, prelu, resnet  # noqa: F401  (importing registers the families)
from .checkpoint import apply_checkpoint, load_checkpoint, load_state_dict_into
from .from_source import build_model, zoo_spec
from .geometry import output_hw, output_shape
from .registry import ModelSpec, create_model, get_spec, list_models, register_model
from .user_factory import load_user_model

__all__ = [
    "ModelSpec", "create_model", "get_spec", "list_models", "register_model",
    "output_hw", "output_shape", "load_checkpoint", "apply_checkpoint", "load_state_dict_into",
    "load_user_model", "build_model", "zoo_spec", "ModelConfigError",
]
