"""Shape facts computed from the module itself (no real compute: fake tensors)."""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..errors import ModelConfigError
from .build_info import build_config


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
    out = first_tensor(out)
    return None if out is None else tuple(int(d) for d in out.shape)


def first_tensor(out):
    """The first tensor of a model's output (a tensor, or a list/tuple/dict of them), else ``None``."""
    from torch.utils._pytree import tree_leaves

    return next((t for t in tree_leaves(out) if isinstance(t, torch.Tensor)), None)


def output_hw(model: nn.Module, h: int, w: int, in_channels: int | None = None) -> tuple[int, int] | None:
    """Output (H, W) for an (h, w) input, or ``None`` when the size is not admissible."""
    if in_channels is None:
        in_channels = input_channels(model)
    shape = output_shape(model, (1, in_channels, h, w))
    if shape is None or len(shape) != 4 or min(shape[2:]) < 1:
        return None
    return shape[2], shape[3]


def output_spatial(model: nn.Module, sizes: tuple[int, ...], in_channels: int | None = None) -> tuple[int, ...] | None:
    """Output spatial size (D, H, W or H, W) for an input of spatial ``sizes``; ``None`` when not admissible."""
    if in_channels is None:
        in_channels = input_channels(model)
    shape = output_shape(model, (1, in_channels, *sizes))
    if shape is None or len(shape) != len(sizes) + 2 or min(shape[2:]) < 1:
        return None
    return tuple(shape[2:])


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _first_conv(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, _CONVS):
            return m
    raise ModelConfigError(f"cannot tell the input channels of {type(model).__name__}: it has no convolution",
                           "an in_channels factory keyword or a Conv2d/Conv3d layer",
                           "give the factory an in_channels keyword and pass --model-kwargs '{\"in_channels\": C}'")


def input_channels(model: nn.Module) -> int:
    """Input channels: the build's ``in_channels`` (:func:`build_config`) or the first convolution's."""
    ch = build_config(model).get("in_channels")
    return int(ch) if ch else _first_conv(model).in_channels


def spatial_dims(model: nn.Module) -> int:
    """Spatial rank of the input: 3 for a volumetric (Conv3d) model, else 2.

    The build's ``spatial_dims`` (:func:`build_config`) wins (MONAI's factories take that keyword); otherwise the
    first convolution decides.
    """
    dims = build_config(model).get("spatial_dims")
    if dims in (2, 3):
        return int(dims)
    try:
        first = _first_conv(model)
    except ModelConfigError:
        return 2
    return 3 if isinstance(first, (nn.Conv3d, nn.ConvTranspose3d)) else 2


def downsampling_factor(model: nn.Module) -> int | None:
    """Product of the strides of strided convolutions and poolings along one axis, if readable.

    A rough reading (it assumes one encoder path); the probe uses it only as a last candidate.
    """
    factor = 1
    for m in model.modules():
        stride = getattr(m, "stride", None)
        if not isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool2d,
                              nn.AvgPool3d)) or stride is None:
            continue
        s = max(stride) if isinstance(stride, (tuple, list)) else int(stride)
        factor *= max(1, s)
    return factor if factor > 1 else None
