"""The UNet zoo: every variant behind one registry."""

from .checkpoint import apply_checkpoint, load_checkpoint, load_state_dict_into
from .geometry import output_hw, output_shape
from .layers import ModelConfigError
from .registry import ModelSpec, create_model, get_spec, list_models, register_model
from .user import load_user_model

__all__ = [
    "ModelSpec", "create_model", "get_spec", "list_models", "register_model",
    "output_hw", "output_shape", "load_checkpoint", "apply_checkpoint", "load_state_dict_into",
    "load_user_model", "ModelConfigError",
]
