"""A BN + PReLU U-Net with padded convolutions (``UNetModel`` of the ResNet/U-Net backbone notes).

Module names (``encode_layer1`` ... ``encode_decode_layer``, ``pool1`` ..., ``upconv4`` ...,
``decode_layer4`` ..., ``out_layer``) and the concatenation order ``cat([up, skip])`` (decoder
map first) follow the source, so its state dicts load unchanged. Skips are concatenated
without pad or crop: H and W must be multiples of 16.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import check_common
from .registry import register_model


def conv_bn_prelu_x2(in_channels: int, out_channels: int) -> nn.Sequential:
    """(3x3 padded conv with bias -> BatchNorm -> PReLU) x 2 as one flat Sequential (indices 0-5)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=1),
        nn.BatchNorm2d(out_channels),
        nn.PReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, stride=1),
        nn.BatchNorm2d(out_channels),
        nn.PReLU(),
    )


class PReLUUNet(nn.Module):
    """Four-level U-Net with BatchNorm and single-parameter PReLU activations.

    Args:
        in_channels: Input channels.
        num_classes: Output channels.
        width: Channels of the first level; levels use ``width * (1, 2, 4, 8, 16)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 32):
        super().__init__()
        ch = [width * 2 ** k for k in range(5)]
        prev = in_channels
        for k in range(1, 5):
            self.add_module(f"encode_layer{k}", conv_bn_prelu_x2(prev, ch[k - 1]))
            self.add_module(f"pool{k}", nn.MaxPool2d(kernel_size=2, stride=2))
            prev = ch[k - 1]
        self.encode_decode_layer = conv_bn_prelu_x2(ch[3], ch[4])
        for k in range(4, 0, -1):
            self.add_module(f"upconv{k}", nn.ConvTranspose2d(ch[k], ch[k - 1], kernel_size=2, stride=2))
            self.add_module(f"decode_layer{k}", conv_bn_prelu_x2(2 * ch[k - 1], ch[k - 1]))
        self.out_layer = nn.Sequential(nn.Conv2d(ch[0], num_classes, kernel_size=1, padding=0, stride=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k in range(1, 5):
            x = getattr(self, f"encode_layer{k}")(x)
            skips.append(x)
            x = getattr(self, f"pool{k}")(x)
        x = self.encode_decode_layer(x)
        for k in range(4, 0, -1):
            up = getattr(self, f"upconv{k}")(x)
            x = getattr(self, f"decode_layer{k}")(torch.cat((up, skips[k - 1]), dim=1))
        return self.out_layer(x)


@register_model(
    "prelu",
    family="prelu",
    description="BN + PReLU U-Net (padded convs, cat([up, skip])), 1 input channel by default",
    defaults={"in_channels": 1, "num_classes": 2, "width": 32},
    alignment=16,
    min_size=16,
    geometry="same",
    notes="H and W must be multiples of 16: the skips are concatenated without pad or crop. "
          "Output size equals the input.",
)
def _build_prelu(in_channels: int, num_classes: int, width: int) -> nn.Module:
    in_channels, num_classes, width = check_common(in_channels, num_classes, width)
    return PReLUUNet(in_channels, num_classes, width)
