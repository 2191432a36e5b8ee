"""Batch-norm U-Nets: one configurable BN U-Net (three skip modes) and a plain no-BN U-Net.

:class:`ConfigurableUNet` joins the decoder and the skip in one of three ways, each registered
under its own name:

* ``crop`` (concat mode 0): unpadded convolutions, the skip is centre-cropped to the decoder map.
* ``pad`` (concat mode 1): unpadded convolutions, the decoder map is zero-padded to the skip.
* ``same`` (concat mode 2): padded convolutions, direct concatenation (H, W multiples of 16).

:class:`PlainUNet` has padded convolutions without BatchNorm and no size alignment at all.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelConfigError
from .layers import check_common, crop_like, pad_like
from .registry import register_model

CONCAT_MODES = {"crop": 0, "pad": 1, "same": 2}


class ConvBlock(nn.Module):
    """Two (3x3 conv with bias -> BatchNorm -> ReLU) stages in ``self.conv``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        padding: Convolution padding: 0 (valid, -4 px per block) or 1 (same size).
    """

    def __init__(self, in_channels: int, out_channels: int, padding: int = 0):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=padding),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=padding),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DownSample(nn.Module):
    """2x2 max-pool then a :class:`ConvBlock`, in ``self.maxpool_conv``."""

    def __init__(self, in_channels: int, out_channels: int, padding: int = 0):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(kernel_size=2, stride=2),
                                          ConvBlock(in_channels, out_channels, padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class UpSample(nn.Module):
    """2x2 stride-2 transposed conv, align with the skip per ``concat``, ``cat([skip, up])``, ConvBlock.

    Args:
        in_channels: Channels of the map being upsampled (and of the concatenation).
        out_channels: Output channels.
        concat: 0 = centre-crop the skip, 1 = pad the upsampled map, 2 = padded convs and
            direct concatenation.
    """

    def __init__(self, in_channels: int, out_channels: int, concat: int = 0):
        super().__init__()
        self.concat = concat
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = ConvBlock(in_channels, out_channels, padding=1 if concat == 2 else 0)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if self.concat == 0:  # a constructor setting, not a size test
            skip = crop_like(skip, x)
        elif self.concat == 1:
            x = pad_like(x, skip)
        return self.conv(torch.cat([skip, x], dim=1))


class ConfigurableUNet(nn.Module):
    """The BN U-Net with a selectable skip-join mode.

    Args:
        n_channels: Input channels.
        n_classes: Output channels.
        concat: 0 (crop), 1 (pad) or 2 (same); see the module docstring.
        width: Channels of the first level; levels use ``width * (1, 2, 4, 8, 16)``.
    """

    def __init__(self, n_channels: int, n_classes: int, concat: int = 0, width: int = 64):
        super().__init__()
        if concat not in (0, 1, 2):
            raise ModelConfigError(f"concat mode {concat!r} is invalid", "0 (crop), 1 (pad) or 2 (same)",
                                   "pick one of the registered names crop, pad, same")
        self.n_channels, self.n_classes, self.concat = n_channels, n_classes, concat
        padding = 1 if concat == 2 else 0
        ch = [width * 2 ** k for k in range(5)]
        self.inc = ConvBlock(n_channels, ch[0], padding)
        self.down1 = DownSample(ch[0], ch[1], padding)
        self.down2 = DownSample(ch[1], ch[2], padding)
        self.down3 = DownSample(ch[2], ch[3], padding)
        self.down4 = DownSample(ch[3], ch[4], padding)
        self.up1 = UpSample(ch[4], ch[3], concat)
        self.up2 = UpSample(ch[3], ch[2], concat)
        self.up3 = UpSample(ch[2], ch[1], concat)
        self.up4 = UpSample(ch[1], ch[0], concat)
        self.outc = nn.Conv2d(ch[0], n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.inc(x)
        e2 = self.down1(e1)
        e3 = self.down2(e2)
        e4 = self.down3(e3)
        e5 = self.down4(e4)
        y = self.up1(e5, e4)
        y = self.up2(y, e3)
        y = self.up3(y, e2)
        y = self.up4(y, e1)
        return self.outc(y)


def double_convolution(in_channels: int, out_channels: int) -> nn.Sequential:
    """(3x3 padded conv with bias -> ReLU) x 2, without BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )


class PlainUNet(nn.Module):
    """The plain U-Net: padded convs, no BatchNorm, no pad or crop at the skips.

    Skips are concatenated directly, so H and W must be multiples of 16.

    Args:
        in_channels: Input channels.
        num_classes: Output channels.
        width: Channels of the first level; levels use ``width * (1, 2, 4, 8, 16)``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, width: int = 64):
        super().__init__()
        ch = [width * 2 ** k for k in range(5)]
        self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2)
        prev = in_channels
        for k in range(5):
            self.add_module(f"down_convolution_{k + 1}", double_convolution(prev, ch[k]))
            prev = ch[k]
        for k in range(4):
            out = ch[3 - k]
            self.add_module(f"up_transpose_{k + 1}", nn.ConvTranspose2d(prev, out, kernel_size=2, stride=2))
            self.add_module(f"up_convolution_{k + 1}", double_convolution(2 * out, out))
            prev = out
        self.out = nn.Conv2d(ch[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k in range(1, 5):
            x = getattr(self, f"down_convolution_{k}")(x)
            skips.append(x)
            x = self.max_pool2d(x)
        x = self.down_convolution_5(x)
        for k in range(1, 5):
            up = getattr(self, f"up_transpose_{k}")(x)
            x = getattr(self, f"up_convolution_{k}")(torch.cat([skips[4 - k], up], dim=1))
        return self.out(x)


_DEFAULTS = {"in_channels": 3, "num_classes": 2, "width": 64}


def build_configurable(in_channels: int, num_classes: int, width: int, concat: int | str) -> nn.Module:
    """Build a :class:`ConfigurableUNet`; ``concat`` is 0/1/2 or ``"crop"``/``"pad"``/``"same"``."""
    in_channels, num_classes, width = check_common(in_channels, num_classes, width)
    mode = CONCAT_MODES.get(concat, concat) if isinstance(concat, str) else concat
    return ConfigurableUNet(in_channels, num_classes, concat=mode, width=width)


@register_model(
    "crop", family="bn-unet", defaults=_DEFAULTS, alignment=1, min_size=188, geometry="valid",
    description="BN U-Net, unpadded convs, skip centre-cropped to the decoder map (concat 0)",
    notes="Same geometry as 'paper': any H, W >= 188; output = input - 184 for H, W = 12 (mod 16), "
          "e.g. 572 -> 388.",
)
def _build_crop(in_channels: int, num_classes: int, width: int) -> nn.Module:
    return build_configurable(in_channels, num_classes, width, "crop")


@register_model(
    "pad", family="bn-unet", defaults=_DEFAULTS, alignment=1, min_size=140, geometry="valid",
    description="BN U-Net, unpadded convs, decoder map zero-padded to the skip (concat 1)",
    notes="Any H, W >= 140 (the bottleneck needs >= 1 px); the output is always input - 8 "
          "because every decoder level is padded back to its skip's size.",
)
def _build_pad(in_channels: int, num_classes: int, width: int) -> nn.Module:
    return build_configurable(in_channels, num_classes, width, "pad")


@register_model(
    "same", family="bn-unet", defaults=_DEFAULTS, alignment=16, min_size=16, geometry="same",
    description="BN U-Net, padded convs, direct concatenation (concat 2)",
    notes="H and W must be multiples of 16 (skips are concatenated without pad or crop); output "
          "size equals the input.",
)
def _build_same(in_channels: int, num_classes: int, width: int) -> nn.Module:
    return build_configurable(in_channels, num_classes, width, "same")


@register_model(
    "plain", family="bn-unet", defaults=_DEFAULTS, alignment=16, min_size=16, geometry="same",
    description="U-Net without BatchNorm: padded convs + ReLU, direct concatenation",
    notes="H and W must be multiples of 16: the skips are concatenated without pad or crop, so "
          "any other size fails at the first concatenation whose maps differ. Output equals input.",
)
def _build_plain(in_channels: int, num_classes: int, width: int) -> nn.Module:
    in_channels, num_classes, width = check_common(in_channels, num_classes, width)
    return PlainUNet(in_channels, num_classes, width)
