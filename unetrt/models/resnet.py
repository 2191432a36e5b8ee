"""U-Nets with a ResNet encoder (18/34/50/101/152) and a transposed-convolution decoder.

The encoder (``model.encoder``) uses torchvision's attribute names (``conv1``, ``bn1``,
``layer1``..``layer4``, blocks with ``conv1``/``bn1``/... and ``downsample``), without
``avgpool``/``fc``, so ImageNet weights load with
``model.encoder.load_state_dict(tv_state_dict, strict=False)`` (only ``fc.*`` is unexpected).
The decoder pads (or crops) every upsampled map to its skip and the last one to the input
size, so the output has the input's H and W for any size.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import check_common, pad_like, pad_to
from .milesial import DoubleConv
from .registry import register_model


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 padded convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 convs with a residual connection (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """torchvision-compatible ResNet trunk returning five feature maps.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: Blocks per stage, e.g. ``[2, 2, 2, 2]`` for ResNet-18.
        in_channels: Input channels of the stem.
        width: Base width (64 in torchvision); stages use ``width * (1, 2, 4, 8)`` planes.

    Attributes:
        channels: Channels of the five outputs (stem, layer1..layer4).
    """

    def __init__(self, block: type, layers: list[int], in_channels: int = 3, width: int = 64):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.channels = [width] + [width * m * block.expansion for m in (1, 2, 4, 8)]

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c0 = self.relu(self.bn1(self.conv1(x)))  # H/2 (ceil)
        c1 = self.layer1(self.maxpool(c0))  # H/4
        c2 = self.layer2(c1)  # H/8
        c3 = self.layer3(c2)  # H/16
        c4 = self.layer4(c3)  # H/32
        return [c0, c1, c2, c3, c4]


class DecoderUp(nn.Module):
    """Transposed conv x2, pad/crop to the skip, ``cat([skip, up])``, :class:`DoubleConv`.

    Args:
        in_channels: Channels of the map being upsampled (halved by the transposed conv).
        skip_channels: Channels of the skip map.
        out_channels: Output channels.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(skip_channels + in_channels // 2, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = pad_like(self.up(x), skip)  # the ceil-rounded encoder can make up 1 px larger: crop
        return self.conv(torch.cat([skip, x], dim=1))


class ResNetUNet(nn.Module):
    """ResNet encoder + four :class:`DecoderUp` blocks + a full-resolution head.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: Blocks per encoder stage.
        in_channels: Input channels.
        num_classes: Output channels.
        width: Encoder base width; the decoder uses ``4w, 2w, w, max(w // 2, 4)`` channels.
    """

    def __init__(self, block: type, layers: list[int], in_channels: int = 3, num_classes: int = 2,
                 width: int = 64):
        super().__init__()
        self.encoder = ResNetEncoder(block, layers, in_channels, width)
        enc = self.encoder.channels
        dec = [4 * width, 2 * width, width, max(width // 2, 4)]
        self.up1 = DecoderUp(enc[4], enc[3], dec[0])
        self.up2 = DecoderUp(dec[0], enc[2], dec[1])
        self.up3 = DecoderUp(dec[1], enc[1], dec[2])
        self.up4 = DecoderUp(dec[2], enc[0], dec[3])
        self.final_up = nn.ConvTranspose2d(dec[3], dec[3], kernel_size=2, stride=2)
        self.final_conv = DoubleConv(dec[3], dec[3])
        self.head = nn.Conv2d(dec[3], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c0, c1, c2, c3, c4 = self.encoder(x)
        y = self.up1(c4, c3)
        y = self.up2(y, c2)
        y = self.up3(y, c1)
        y = self.up4(y, c0)
        y = pad_to(self.final_up(y), x.size(2), x.size(3))
        return self.head(self.final_conv(y))


_DEPTHS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}

#: Smallest supported H, W: one stride-32 cell. The graph itself runs (and exports) down to 1 px,
#: because every stride-2 stage rounds up, but below 32 px the layer4 map is a single pixel
#: computed mostly from zero padding, which is not a meaningful segmentation input.
RESNET_MIN_SIZE = 32

_NOTES = ("Output H, W equal the input for any H, W >= {min} (odd sizes included): the encoder "
          "rounds odd sizes up (ceil) and every decoder level pads or crops to its skip, the last "
          "one to the input. The graph also runs below {min} px, but the deepest features are then "
          "mostly zero padding. torchvision ImageNet weights load into model.encoder "
          "(strict=False: fc.* is unused).")


def _register(depth: int) -> None:
    block, layers = _DEPTHS[depth]
    kind = "BasicBlock" if block is BasicBlock else "Bottleneck"

    @register_model(
        f"resnet{depth}-unet",
        family="resnet",
        description=f"U-Net decoder on a ResNet-{depth} encoder ({kind} x {layers})",
        defaults={"in_channels": 3, "num_classes": 2, "width": 64},
        alignment=1,
        min_size=RESNET_MIN_SIZE,
        geometry="same",
        notes=_NOTES.format(min=RESNET_MIN_SIZE),
    )
    def _build(in_channels: int, num_classes: int, width: int) -> nn.Module:
        in_channels, num_classes, width = check_common(in_channels, num_classes, width, min_width=2)
        return ResNetUNet(block, layers, in_channels, num_classes, width)

for _depth in _DEPTHS:
    _register(_depth)
