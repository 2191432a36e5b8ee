"""The original 2015 U-Net (Ronneberger et al.): unpadded convolutions and "copy and crop".

Every 3x3 convolution is unpadded, so each level loses 4 pixels and the output is smaller
than the input (572 x 572 -> 388 x 388 at the paper's size). Skip maps are centre-cropped to
the upsampled map before concatenation. Attribute names follow the common from-scratch
re-implementation (``conv1_1`` ... ``conv9_2``, ``up_conv_1`` ... ``up_conv_4``, ``conv_10``)
so its checkpoints load.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import check_common, crop_like
from .registry import register_model

#: Smallest H, W accepted: the bottleneck must be 4 px so that every decoder level keeps >= 1 px
#: (188 -> 184 -> 92 -> 88 -> 44 -> 40 -> 20 -> 16 -> 8 -> 4 up 8 -> 4 ... -> 4 out).
PAPER_MIN_SIZE = 188


class PaperUNet(nn.Module):
    """Valid-convolution U-Net with four pooling steps.

    Level ``k`` (1..5) has two unpadded 3x3 convs with ``width * 2**(k-1)`` channels, each
    followed by ReLU; decoder levels 6..9 mirror them after a 2x2 stride-2 transposed
    convolution and ``cat([cropped_skip, up])``; ``conv_10`` is the 1x1 head.

    Args:
        in_channels: Input channels (1 in the paper).
        num_classes: Output channels (2 in the paper).
        width: Channels of the first level (64 in the paper).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 64):
        super().__init__()
        chans = [width * 2 ** k for k in range(5)]
        prev = in_channels
        for level, ch in enumerate(chans, start=1):
            self._add_level(level, prev, ch)
            prev = ch
        for step in range(1, 5):
            level = 5 + step
            ch = chans[4 - step]
            self.add_module(f"up_conv_{step}", nn.ConvTranspose2d(prev, ch, kernel_size=2, stride=2))
            self._add_level(level, 2 * ch, ch)
            prev = ch
        for k in range(1, 5):
            self.add_module(f"maxpool_{k}", nn.MaxPool2d(kernel_size=2, stride=2))
        self.conv_10 = nn.Conv2d(prev, num_classes, kernel_size=1)

    def _add_level(self, level: int, in_ch: int, out_ch: int) -> None:
        self.add_module(f"conv{level}_1", nn.Conv2d(in_ch, out_ch, kernel_size=3))
        self.add_module(f"relu{level}_1", nn.ReLU(inplace=True))
        self.add_module(f"conv{level}_2", nn.Conv2d(out_ch, out_ch, kernel_size=3))
        self.add_module(f"relu{level}_2", nn.ReLU(inplace=True))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        x = getattr(self, f"relu{level}_1")(getattr(self, f"conv{level}_1")(x))
        return getattr(self, f"relu{level}_2")(getattr(self, f"conv{level}_2")(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level in range(1, 5):
            x = self._level(level, x)
            skips.append(x)
            x = getattr(self, f"maxpool_{level}")(x)
        x = self._level(5, x)
        for step in range(1, 5):
            up = getattr(self, f"up_conv_{step}")(x)
            x = torch.cat([crop_like(skips[4 - step], up), up], dim=1)
            x = self._level(5 + step, x)
        return self.conv_10(x)


@register_model(
    "paper",
    family="paper",
    description="2015 U-Net: unpadded convs, no BN, copy-and-crop skips (572 -> 388)",
    defaults={"in_channels": 1, "num_classes": 2, "width": 64},
    alignment=1,
    min_size=PAPER_MIN_SIZE,
    geometry="valid",
    notes="Output is smaller than the input (see output_hw). Any H, W >= 188 works (pooling "
          "floors, skips are centre-cropped per axis). Seamless tiling needs every pooled map "
          "even: H, W = 12 (mod 16), e.g. 188, 572; for those the output is input - 184 "
          "(572 -> 388).",
)
def _build_paper(in_channels: int, num_classes: int, width: int) -> nn.Module:
    in_channels, num_classes, width = check_common(in_channels, num_classes, width)
    return PaperUNet(in_channels, num_classes, width)
