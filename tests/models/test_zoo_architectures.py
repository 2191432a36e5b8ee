"""Architecture facts of individual variants: key names, parameter counts, geometry, wiring."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unetrt.models import create_model, get_spec, output_hw

# ---------------------------------------------------------------- helpers


def _keep(store: dict, key: str, what: str):
    """Forward hook storing the module's first input or its output (returns None: no override)."""
    def hook(module, inputs, output):
        store[key] = (inputs[0] if what == "input" else output).detach().clone()
    return hook


# ---------------------------------------------------------------- milesial


def milesial_param_count(n_channels: int, n_classes: int, width: int, bilinear: bool) -> int:
    """Parameter count of milesial's UNet derived from its layer list (BN: weight + bias)."""
    def double_conv(cin, cout, mid=None):
        mid = mid or cout
        return 9 * cin * mid + 2 * mid + 9 * mid * cout + 2 * cout

    def up_conv(cin):  # ConvTranspose2d(cin, cin // 2, 2, stride 2) with bias
        return 4 * cin * (cin // 2) + cin // 2

    w, f = width, 2 if bilinear else 1
    total = double_conv(n_channels, w)
    total += double_conv(w, 2 * w) + double_conv(2 * w, 4 * w) + double_conv(4 * w, 8 * w)
    total += double_conv(8 * w, 16 * w // f)
    for cin, cout in [(16 * w, 8 * w // f), (8 * w, 4 * w // f), (4 * w, 2 * w // f), (2 * w, w)]:
        total += double_conv(cin, cout, cin // 2) if bilinear else up_conv(cin) + double_conv(cin, cout)
    return total + w * n_classes + n_classes


@pytest.mark.parametrize("bilinear", [False, True])
def test_milesial_param_count_matches_architecture(bilinear):
    with torch.device("meta"):
        model = create_model("milesial", bilinear=bilinear)
    got = sum(p.numel() for p in model.parameters())
    assert got == milesial_param_count(3, 2, 64, bilinear)
    assert model.n_channels == 3 and model.n_classes == 2 and model.bilinear is bilinear


def test_milesial_bilinear_is_smaller_by_the_removed_transposed_convs():
    full, bil = milesial_param_count(3, 2, 64, False), milesial_param_count(3, 2, 64, True)
    assert 1.7 < full / bil < 1.9  # 31.0M vs 17.3M in milesial's README


@pytest.mark.parametrize("bilinear", [False, True])
def test_milesial_state_dict_keys(bilinear):
    keys = list(create_model("milesial", width=4, bilinear=bilinear).state_dict())
    for key in ["inc.double_conv.0.weight", "inc.double_conv.1.running_mean",
                "inc.double_conv.1.num_batches_tracked",
                "inc.double_conv.3.weight", "inc.double_conv.4.running_var",
                "down1.maxpool_conv.1.double_conv.0.weight", "down4.maxpool_conv.1.double_conv.4.bias",
                "up1.conv.double_conv.0.weight", "up4.conv.double_conv.4.weight",
                "outc.conv.weight", "outc.conv.bias"]:
        assert key in keys
    assert ("up1.up.weight" in keys) is not bilinear and ("up1.up.bias" in keys) is not bilinear
    assert not any(".bias" in k for k in keys if "double_conv.0." in k or "double_conv.3." in k)  # bias=False
    # 9 DoubleConvs x (2 conv weights + 2 BN x 5 entries) + 4 transposed convs x 2 + outc x 2
    assert len(keys) == 9 * 12 + (0 if bilinear else 4 * 2) + 2
    assert keys[0] == "inc.double_conv.0.weight" and keys[-1] == "outc.conv.bias"


def test_milesial_up_concatenates_skip_first_after_padding():
    model = create_model("milesial", width=4)
    seen = {}
    model.down3.register_forward_hook(_keep(seen, "skip", "output"))
    model.up1.up.register_forward_hook(_keep(seen, "up", "output"))
    model.up1.conv.register_forward_hook(_keep(seen, "cat", "input"))
    with torch.no_grad():
        model(torch.randn(1, 3, 48, 80))
    skip, up, cat = seen["skip"], seen["up"], seen["cat"]
    torch.testing.assert_close(cat, torch.cat([skip, up], dim=1))


def test_milesial_pads_odd_sizes_like_the_original():
    model = create_model("milesial", width=4)
    seen = {}
    model.up4.up.register_forward_hook(_keep(seen, "up", "output"))
    model.up4.conv.register_forward_hook(_keep(seen, "cat", "input"))
    with torch.no_grad():
        model(torch.randn(1, 3, 17, 19))  # up4 upsamples 8x9 -> 16x18, skip is 17x19
    up, cat = seen["up"], seen["cat"]
    assert up.shape[2:] == (16, 18)
    padded = cat[:, 4:]  # second half: the upsampled map, padded 0 before / 1 after
    torch.testing.assert_close(padded[:, :, :16, :18], up)
    assert padded[:, :, 16, :].abs().sum() == 0 and padded[:, :, :, 18].abs().sum() == 0


@settings(max_examples=20, deadline=None)
@given(h=st.integers(16, 80), w=st.integers(16, 80), bilinear=st.booleans())
def test_milesial_output_matches_input_size(h, w, bilinear):
    model = _milesial_small(bilinear)
    with torch.no_grad():
        y = model(torch.randn(1, 3, h, w))
    assert tuple(y.shape) == (1, 2, h, w)


_CACHE: dict = {}


def _milesial_small(bilinear: bool):
    if bilinear not in _CACHE:
        _CACHE[bilinear] = create_model("milesial", width=2, bilinear=bilinear)
    return _CACHE[bilinear]


# ---------------------------------------------------------------- paper / crop / pad


@pytest.mark.parametrize("name", ["paper", "crop"])
def test_valid_unet_paper_geometry(name):
    model = create_model(name)  # default width 64; output_hw runs on fake tensors: no compute
    assert output_hw(model, 572, 572) == (388, 388)
    for size in (188, 204, 220, 572):  # H = 12 (mod 16): every pooled map is even
        assert size % 16 == 12
        assert output_hw(model, size, size) == (size - 184, size - 184)
    assert output_hw(model, 200, 572) == (4, 388)  # not a tiling size: floor pooling loses pixels
    assert "572" in get_spec(name).notes and "184" in get_spec(name).notes


def test_paper_state_dict_keys_follow_the_reference():
    keys = list(create_model("paper", width=4).state_dict())
    expected = []
    for level in range(1, 10):
        if level >= 6:
            expected += [f"up_conv_{level - 5}.weight", f"up_conv_{level - 5}.bias"]
        expected += [f"conv{level}_{i}.{p}" for i in (1, 2) for p in ("weight", "bias")]
    assert keys == expected + ["conv_10.weight", "conv_10.bias"]


def test_paper_crops_skip_per_axis():
    model = create_model("paper", width=2)
    seen = {}
    model.relu4_2.register_forward_hook(_keep(seen, "skip", "output"))
    model.up_conv_1.register_forward_hook(_keep(seen, "up", "output"))
    model.conv6_1.register_forward_hook(_keep(seen, "cat", "input"))
    with torch.no_grad():
        model(torch.randn(1, 1, 188, 205))
    skip, up, cat = seen["skip"], seen["up"], seen["cat"]
    h, w = up.shape[2:]
    top, left = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2
    assert skip.shape[2:] != up.shape[2:] and (top, left) != (0, 0)
    torch.testing.assert_close(cat[:, : skip.shape[1]], skip[:, :, top:top + h, left:left + w])
    torch.testing.assert_close(cat[:, skip.shape[1]:], up)


def test_pad_variant_output_is_input_minus_8():
    model = create_model("pad", width=2)
    for h, w in [(140, 140), (141, 157), (200, 173)]:
        assert output_hw(model, h, w) == (h - 8, w - 8)


def test_bn_unet_modes_share_parameters_but_not_geometry():
    shapes = {n: {k: v.shape for k, v in create_model(n, width=4).state_dict().items()}
              for n in ("crop", "pad", "same")}
    assert shapes["crop"] == shapes["pad"] == shapes["same"]
    assert [get_spec(n).geometry for n in ("crop", "pad", "same")] == ["valid", "valid", "same"]
    assert create_model("crop", width=4).inc.conv[0].padding == (0, 0)
    assert {"inc.conv.0.weight", "inc.conv.1.running_mean", "down1.maxpool_conv.1.conv.3.weight",
            "up1.up.weight", "up1.conv.conv.4.bias", "outc.weight", "outc.bias"} <= set(shapes["crop"])
    assert create_model("same", width=4).up1.conv.conv[3].padding == (1, 1)


def test_plain_has_no_batchnorm_and_seed_names():
    model = create_model("plain", width=4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    keys = set(model.state_dict())
    assert {"down_convolution_1.0.weight", "down_convolution_5.2.bias", "up_transpose_1.weight",
            "up_convolution_4.2.weight", "out.weight", "out.bias"} <= keys
    assert "16" in get_spec("plain").notes


def test_plain_param_count_matches_the_reference_printout():
    with torch.device("meta"):
        model = create_model("plain", num_classes=10)
    # The reference notebook prints 31,032,330 parameters for UNet(num_classes=10).
    assert sum(p.numel() for p in model.parameters()) == 31_032_330


# ---------------------------------------------------------------- prelu


def test_prelu_keys_and_decoder_first_concatenation():
    model = create_model("prelu", width=4)
    keys = set(model.state_dict())
    assert {"encode_layer1.0.weight", "encode_layer1.2.weight", "encode_decode_layer.3.weight",
            "upconv4.weight", "decode_layer1.5.weight", "out_layer.0.weight"} <= keys
    assert get_spec("prelu").defaults == {"in_channels": 1, "num_classes": 2, "width": 32}
    seen = {}
    model.encode_layer4.register_forward_hook(_keep(seen, "skip", "output"))
    model.upconv4.register_forward_hook(_keep(seen, "up", "output"))
    model.decode_layer4.register_forward_hook(_keep(seen, "cat", "input"))
    with torch.no_grad():
        model(torch.randn(2, 1, 32, 48))
    torch.testing.assert_close(seen["cat"], torch.cat([seen["up"], seen["skip"]], dim=1))


# ---------------------------------------------------------------- resnet

# torchvision's published parameter counts minus the ImageNet fc layer (512 or 2048 -> 1000).
TORCHVISION_TRUNK = {18: 11_689_512 - 513_000, 34: 21_797_672 - 513_000, 50: 25_557_032 - 2_049_000,
                     101: 44_549_160 - 2_049_000, 152: 60_192_808 - 2_049_000}


@pytest.mark.parametrize("depth", sorted(TORCHVISION_TRUNK))
def test_resnet_encoder_matches_torchvision(depth):
    with torch.device("meta"):
        model = create_model(f"resnet{depth}-unet")
    assert sum(p.numel() for p in model.encoder.parameters()) == TORCHVISION_TRUNK[depth]
    keys = set(model.encoder.state_dict())
    assert {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.running_mean", "layer4.1.bn2.weight"} <= keys
    assert ("layer1.0.conv3.weight" in keys) is (depth >= 50)
    assert not any(k.startswith(("fc.", "avgpool")) for k in keys)


@pytest.mark.parametrize("h, w", [(64, 64), (65, 97), (33, 47), (100, 37)])
def test_resnet_scales_round_up_and_output_is_full_size(h, w):
    model = create_model("resnet18-unet", width=4)
    with torch.no_grad():
        feats = model.encoder(torch.randn(1, 3, h, w))
        out = model(torch.randn(1, 3, h, w))
    for level, feat in enumerate(feats, start=1):
        assert feat.shape[2:] == (math.ceil(h / 2 ** level), math.ceil(w / 2 ** level))
    assert out.shape == (1, 2, h, w)


@pytest.mark.parametrize("width, last", [(8, 4), (64, 32), (4, 4)])
def test_resnet_decoder_channels(width, last):
    with torch.device("meta"):
        model = create_model("resnet50-unet", width=width)
    outs = [getattr(model, f"up{i}").conv.double_conv[3].out_channels for i in range(1, 5)]
    assert outs == [4 * width, 2 * width, width, last]
    assert model.head.in_channels == last and model.encoder.layer4[-1].conv3.out_channels == 32 * width
