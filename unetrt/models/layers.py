"""Shape-alignment helpers shared by the zoo, written to trace under ``torch.export``.

Both helpers compute their offsets from tensor sizes and apply them unconditionally: no
Python branch ever looks at a size, so a dynamic H or W stays symbolic when exported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ModelConfigError


def pad_to(x: torch.Tensor, height, width) -> torch.Tensor:
    """Zero-pad (or, for a negative difference, crop) ``x`` to ``height`` x ``width``.

    The split follows milesial's Pytorch-UNet: ``diff // 2`` before and the rest after, for
    H and W independently. A zero difference is a no-op pad.

    Args:
        x: Tensor of shape ``(N, C, H, W)``.
        height: Target height (an int or a symbolic int).
        width: Target width (an int or a symbolic int).

    Returns:
        Tensor of shape ``(N, C, height, width)``.
    """
    diff_y = height - x.size(2)
    diff_x = width - x.size(3)
    return F.pad(x, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])


def center_crop(x: torch.Tensor, height, width) -> torch.Tensor:
    """Crop the centre ``height`` x ``width`` window out of ``x``.

    The offsets are ``(size - target) // 2`` for H and W independently, so odd differences
    leave the extra row or column at the bottom / right.

    Args:
        x: Tensor of shape ``(N, C, H, W)`` with ``H >= height`` and ``W >= width``.
        height: Target height (an int or a symbolic int).
        width: Target width (an int or a symbolic int).

    Returns:
        Tensor of shape ``(N, C, height, width)``.
    """
    top = (x.size(2) - height) // 2
    left = (x.size(3) - width) // 2
    return x[:, :, top:top + height, left:left + width]


def crop_like(skip: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Centre-crop ``skip`` to the spatial size of ``ref`` (U-Net "copy and crop")."""
    return center_crop(skip, ref.size(2), ref.size(3))


def pad_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Pad or crop ``x`` to the spatial size of ``ref`` (see :func:`pad_to`)."""
    return pad_to(x, ref.size(2), ref.size(3))


def check_int(name: str, value, minimum: int = 1) -> int:
    """Validate a positive integer model argument.

    Args:
        name: Argument name, used in the message.
        value: The value to check (``bool`` is refused even though it is an ``int``).
        minimum: Smallest accepted value.

    Returns:
        ``value`` as an ``int``.

    Raises:
        ModelConfigError: ``value`` is not an integer ``>= minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ModelConfigError(f"model argument {name}={value!r} is invalid",
                               f"an integer >= {minimum}", f"pass {name}={max(minimum, 1)} or larger")
    return int(value)


def check_common(in_channels, num_classes, width, min_width: int = 1) -> tuple[int, int, int]:
    """Validate the arguments every variant takes: ``in_channels``, ``num_classes``, ``width``."""
    return (check_int("in_channels", in_channels), check_int("num_classes", num_classes),
            check_int("width", width, min_width))


def check_bool(name: str, value) -> bool:
    """Validate a boolean model argument (``True``/``False``, or 0/1)."""
    if value not in (True, False) or not isinstance(value, (bool, int)):
        raise ModelConfigError(f"model argument {name}={value!r} is invalid", "True or False",
                               f"pass {name}=True or {name}=False")
    return bool(value)
