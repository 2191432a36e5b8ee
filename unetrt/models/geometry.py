"""Shape facts computed from the module itself (no real compute: fake tensors)."""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..errors import ModelConfigError


def round_up(x: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``x``."""
    return -(-x // multiple) * multiple


def output_shape(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Shape of ``model(x)`` for an input of ``input_shape``, or ``None`` if the model rejects it.

    Runs the forward pass under :class:`torch._subclasses.FakeTensorMode`, so it costs no
    arithmetic and works for any size, including ones a valid-convolution UNet cannot take.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    fake_log = logging.getLogger("torch._subclasses.fake_tensor")
    level = fake_log.level
    fake_log.setLevel(logging.CRITICAL)  # a rejected size is an answer here, not an error to log
    try:
        with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True) as mode:
            out = model(mode.from_tensor(torch.empty(input_shape, dtype=dtype, device=device)))
    except (RuntimeError, ValueError, IndexError):
        return None
    finally:
        fake_log.setLevel(level)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if isinstance(out, dict):
        out = next(iter(out.values()))
    return tuple(int(d) for d in out.shape)


def output_hw(model: nn.Module, h: int, w: int, in_channels: int | None = None) -> tuple[int, int] | None:
    """Output (H, W) for an (h, w) input, or ``None`` when the size is not admissible."""
    if in_channels is None:
        in_channels = input_channels(model)
    shape = output_shape(model, (1, in_channels, h, w))
    if shape is None or len(shape) != 4 or min(shape[2:]) < 1:
        return None
    return shape[2], shape[3]


def _first_conv_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ModelConfigError(f"cannot tell the input channels of {type(model).__name__}: it has no Conv2d",
                           "model.config['in_channels'] or a Conv2d layer",
                           "set model.config = {'in_channels': C} in the factory, or pass in_channels")


def input_channels(model: nn.Module) -> int:
    """Input channels: ``model.config['in_channels']`` or the first Conv2d's."""
    ch = getattr(model, "config", {}).get("in_channels")
    return int(ch) if ch else _first_conv_channels(model)
