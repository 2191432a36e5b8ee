"""create_model / get_spec behaviour and argument validation."""

from __future__ import annotations

import pytest

from unetrt.errors import UnetrtError, UnknownModelError
from unetrt.models import create_model, get_spec


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownModelError) as info:
        create_model("milesal")
    msg = str(info.value)
    assert "unknown model 'milesal'" in msg and "did you mean milesial" in msg
    assert isinstance(info.value, KeyError) and not msg.startswith("'")


def test_unknown_resnet_depth_suggests_resnets():
    with pytest.raises(UnknownModelError, match="did you mean resnet"):
        get_spec("resnet35-unet")


def test_none_kwargs_are_dropped():
    model = create_model("milesial", width=4, bilinear=None, num_classes=None)
    assert model.config == {"arch": "milesial", "in_channels": 3, "num_classes": 2, "width": 4,
                            "bilinear": False}
    assert model.outc.conv.out_channels == 2


def test_unknown_kwarg_is_rejected():
    with pytest.raises(TypeError, match="unexpected keyword.*bilinear"):
        create_model("paper", width=4, bilinear=True)


@pytest.mark.parametrize("name, kwargs, fragment", [
    ("milesial", {"width": 0}, "width=0"),
    ("paper", {"width": 2.5}, "width=2.5"),
    ("prelu", {"in_channels": "1"}, "in_channels='1'"),
    ("plain", {"num_classes": -3}, "num_classes=-3"),
    ("same", {"width": True}, "width=True"),
    ("milesial", {"bilinear": "yes"}, "bilinear='yes'"),
    ("resnet18-unet", {"width": 1}, "width=1"),
])
def test_invalid_values_raise_unetrt_errors(name, kwargs, fragment):
    with pytest.raises(UnetrtError) as info:
        create_model(name, **kwargs)
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name, defaults", [
    ("milesial", {"in_channels": 3, "num_classes": 2, "width": 64, "bilinear": False}),
    ("paper", {"in_channels": 1, "num_classes": 2, "width": 64}),
    ("crop", {"in_channels": 3, "num_classes": 2, "width": 64}),
    ("plain", {"in_channels": 3, "num_classes": 2, "width": 64}),
    ("prelu", {"in_channels": 1, "num_classes": 2, "width": 32}),
    ("resnet152-unet", {"in_channels": 3, "num_classes": 2, "width": 64}),
])
def test_documented_defaults(name, defaults):
    assert get_spec(name).defaults == defaults


@pytest.mark.parametrize("name, alignment, min_size, geometry", [
    ("milesial", 1, 16, "same"), ("paper", 1, 188, "valid"), ("crop", 1, 188, "valid"),
    ("pad", 1, 140, "valid"), ("same", 16, 16, "same"), ("plain", 16, 16, "same"),
    ("prelu", 16, 16, "same"), ("resnet50-unet", 1, 32, "same"),
])
def test_spec_geometry_facts(name, alignment, min_size, geometry):
    spec = get_spec(name)
    assert (spec.alignment, spec.min_size, spec.geometry) == (alignment, min_size, geometry)
    assert spec.to_dict()["min_size"] == min_size
