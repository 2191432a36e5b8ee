"""Contract every registered variant must meet: shapes, checkpoint round trip, torch.export."""

from __future__ import annotations

import io

import pytest
import torch
import torch.fx.experimental._config as fxcfg
from torch.export import Dim, export

from unetrt.models import apply_checkpoint, create_model, get_spec, list_models, load_checkpoint, output_hw

PUBLIC_NAMES = ["milesial", "crop", "pad", "same", "plain", "paper", "prelu", "resnet18-unet",
                "resnet34-unet", "resnet50-unet", "resnet101-unet", "resnet152-unet"]
WIDTH = 4


def test_public_names_are_registered():
    assert sorted(list_models()) == sorted(PUBLIC_NAMES)


def sizes_for(name: str) -> list[tuple[int, int]]:
    """Two different admissible, non-square (and, where allowed, odd) sizes for a variant."""
    spec = get_spec(name)
    a, m = spec.alignment, spec.min_size
    if a == 1:
        return [(m + 1, m + 15), (m + 16, m + 2)]
    base = -(-m // a) * a
    return [(base * 3, base * 5), (base * 2, base)]


def small(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_model(name, width=WIDTH)
    _randomise_bn(model)
    return model


def _randomise_bn(model: torch.nn.Module) -> None:
    """Non-trivial BatchNorm statistics, so the round trip must carry buffers too."""
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_spec_is_consistent(name):
    spec = get_spec(name)
    assert spec.name == name
    assert {"in_channels", "num_classes", "width"} <= set(spec.defaults)
    assert spec.geometry in ("same", "valid") and spec.alignment in (1, 16)
    assert spec.min_size % spec.alignment == 0 and spec.notes


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_eager_forward_matches_output_hw(name):
    spec = get_spec(name)
    model = small(name)
    cin = spec.defaults["in_channels"]
    for h, w in sizes_for(name):
        x = torch.randn(2, cin, h, w)
        with torch.no_grad():
            y = model(x)
        expected = output_hw(model, h, w)
        assert expected is not None
        assert tuple(y.shape) == (2, spec.defaults["num_classes"], *expected)
        if spec.geometry == "same":
            assert expected == (h, w)
        else:
            assert expected[0] < h and expected[1] < w
        # batch items are independent (eval mode): item 1 alone gives the same result
        with torch.no_grad():
            torch.testing.assert_close(model(x[1:]), y[1:], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_state_dict_round_trip(name):
    spec = get_spec(name)
    source, fresh = small(name, seed=1), small(name, seed=2)
    buf = io.BytesIO()
    torch.save(source.state_dict(), buf)
    buf.seek(0)
    state, meta = load_checkpoint(buf)
    assert meta["format"] == "state_dict" and set(state) == set(source.state_dict())
    h, w = sizes_for(name)[0]
    x = torch.randn(2, spec.defaults["in_channels"], h, w)
    with torch.no_grad():
        want = source(x)
        assert not torch.allclose(fresh(x), want)  # different init: the load must matter
        apply_checkpoint(fresh, state)
        torch.testing.assert_close(fresh(x), want, rtol=0, atol=0)


def export_dynamic(model: torch.nn.Module, name: str, x: torch.Tensor):
    """torch.export with dynamic N, H, W over the spec's admissible range."""
    spec = get_spec(name)
    if spec.alignment == 1:
        dim_h = Dim("H", min=spec.min_size, max=4096)
        dim_w = Dim("W", min=spec.min_size, max=4096)
    else:
        a = spec.alignment
        dim_h = a * Dim("_H", min=spec.min_size // a, max=4096 // a)
        dim_w = a * Dim("_W", min=spec.min_size // a, max=4096 // a)
    shapes = {"x": {0: Dim("N", min=1, max=1024), 2: dim_h, 3: dim_w}}
    with fxcfg.patch(backed_size_oblivious=True):
        return export(model, (x,), dynamic_shapes=shapes)


@pytest.mark.slow
@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_torch_export_dynamic_shapes(name):
    spec = get_spec(name)
    model = small(name)
    cin = spec.defaults["in_channels"]
    (h1, w1), (h2, w2) = sizes_for(name)
    program = export_dynamic(model, name, torch.randn(2, cin, h1, w1))
    x = torch.randn(3, cin, h2, w2)  # a different batch and size than the traced one
    with torch.no_grad():
        want = model(x)
        got = program.module()(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in PUBLIC_NAMES if get_spec(n).alignment == 1
                                  and not n.startswith("resnet")])
def test_min_size_is_tight(name):
    """min_size is the smallest size the graph accepts (the resnets use a policy floor instead)."""
    model = small(name)
    m = get_spec(name).min_size
    assert output_hw(model, m, m) is not None
    assert output_hw(model, m - 1, m + 3) is None
    assert output_hw(model, m + 3, m - 1) is None


@pytest.mark.parametrize("name", [n for n in PUBLIC_NAMES if get_spec(n).alignment == 16])
def test_aligned_variants_reject_unaligned_sizes(name):
    model = small(name)
    assert output_hw(model, 16, 32) == (16, 32)
    assert output_hw(model, 40, 48) is None  # 40 is not a multiple of 16
    assert output_hw(model, 8, 16) is None  # below min_size


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_create_model_config_and_eval_mode(name):
    model = create_model(name, width=WIDTH, num_classes=3)
    assert not model.training
    assert model.config == {**get_spec(name).defaults, "arch": name, "num_classes": 3, "width": WIDTH}
    last_conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert last_conv.out_channels == 3 and last_conv.kernel_size == (1, 1)
