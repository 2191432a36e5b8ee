"""milesial/Pytorch-UNet, rebuilt with the same module tree and state-dict keys.

Checkpoints trained with https://github.com/milesial/Pytorch-UNet (``inc.double_conv.0.weight``,
``down1.maxpool_conv.1.double_conv.0.weight``, ``up1.up.weight``, ``outc.conv.bias``, ...) load
into :class:`MilesialUNet` unchanged. Padded 3x3 convolutions keep the size; odd sizes are
handled by zero-padding the upsampled map to the skip size, so any H, W >= 16 works.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import check_bool, check_common, pad_like
from .registry import register_model


class DoubleConv(nn.Module):
    """Two (3x3 conv without bias -> BatchNorm -> ReLU) stages.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        mid_channels: Channels between the two convolutions (defaults to ``out_channels``).
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        super().__init__()
        mid = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """2x2 max-pool followed by a :class:`DoubleConv` (attribute ``maxpool_conv``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Upsample x2, pad to the skip size, concatenate ``[skip, up]`` and apply a DoubleConv.

    Args:
        in_channels: Channels of the concatenation (and of the map being upsampled in
            transposed-convolution mode).
        out_channels: Output channels.
        bilinear: Use parameter-free bilinear upsampling (``align_corners=True``) instead of a
            2x2 stride-2 transposed convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, bilinear: bool = False):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = pad_like(self.up(x), skip)
        return self.conv(torch.cat([skip, x], dim=1))


class OutConv(nn.Module):
    """1x1 convolution to the class logits (attribute ``conv``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class MilesialUNet(nn.Module):
    """The U-Net of milesial/Pytorch-UNet with a configurable base width.

    Args:
        n_channels: Input channels.
        n_classes: Output channels (class logits).
        bilinear: Bilinear upsampling instead of transposed convolutions; halves the
            bottleneck and decoder channels as in the original.
        width: Channels of the first level (64 in the original); levels use
            ``width * (1, 2, 4, 8, 16)``.
    """

    def __init__(self, n_channels: int, n_classes: int, bilinear: bool = False, width: int = 64):
        super().__init__()
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.bilinear = bilinear
        w = width
        factor = 2 if bilinear else 1
        self.inc = DoubleConv(n_channels, w)
        self.down1 = Down(w, 2 * w)
        self.down2 = Down(2 * w, 4 * w)
        self.down3 = Down(4 * w, 8 * w)
        self.down4 = Down(8 * w, 16 * w // factor)
        self.up1 = Up(16 * w, 8 * w // factor, bilinear)
        self.up2 = Up(8 * w, 4 * w // factor, bilinear)
        self.up3 = Up(4 * w, 2 * w // factor, bilinear)
        self.up4 = Up(2 * w, w, bilinear)
        self.outc = OutConv(w, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        y = self.up1(x5, x4)
        y = self.up2(y, x3)
        y = self.up3(y, x2)
        y = self.up4(y, x1)
        return self.outc(y)


@register_model(
    "milesial",
    family="milesial",
    description="milesial/Pytorch-UNet (padded convs + BN, transposed-conv or bilinear ups)",
    defaults={"in_channels": 3, "num_classes": 2, "width": 64, "bilinear": False},
    alignment=1,
    min_size=16,
    geometry="same",
    notes="Output H, W equal the input for any H, W >= 16: odd sizes are handled by zero-padding "
          "the upsampled map to the skip size. State-dict keys match milesial's checkpoints.",
)
def _build_milesial(in_channels: int, num_classes: int, width: int, bilinear: bool) -> nn.Module:
    in_channels, num_classes, width = check_common(in_channels, num_classes, width)
    return MilesialUNet(in_channels, num_classes, bilinear=check_bool("bilinear", bilinear), width=width)
