"""User models that own a ``config`` (read-only property or plain attribute) are never written to."""

from __future__ import annotations

import sys
import textwrap
import types

import pytest
import torch

from unetrt.errors import CheckpointError
from unetrt.models import apply_checkpoint, load_user_model
from unetrt.models.build_info import build_config, record_build
from unetrt.models.geometry import input_channels, spatial_dims

OWN_CONFIG = textwrap.dedent('''
    import types

    from torch import nn


    class FrozenConfigNet(nn.Module):
        """Like diffusers/segmentation_models_pytorch: ``config`` is a property without a setter."""

        def __init__(self, in_channels=3, out_channels=2):
            super().__init__()
            self._frozen = types.MappingProxyType({"in_channels": in_channels, "out_channels": out_channels,
                                                   "spatial_dims": 2})
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

        @property
        def config(self):
            return self._frozen

        def forward(self, x):
            return self.conv(x)


    class PlainConfigNet(nn.Module):
        """``config`` is the model's own plain attribute (here not a mapping at all)."""

        def __init__(self, in_channels=3):
            super().__init__()
            self.config = types.SimpleNamespace(name="plain", depth=1)
            self.conv = nn.Conv2d(in_channels, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x)


    class DictConfigNet(PlainConfigNet):
        def __init__(self, in_channels=3):
            super().__init__(in_channels)
            self.config = {"name": "dict", "in_channels": 99}


    def frozen(**kwargs):
        return FrozenConfigNet(**kwargs)


    def plain(**kwargs):
        return PlainConfigNet(**kwargs)


    def dict_config(**kwargs):
        return DictConfigNet(**kwargs)
''')


@pytest.fixture
def own_config_module(tmp_path, monkeypatch):
    name = "unetrt_test_own_config_nets"
    (tmp_path / f"{name}.py").write_text(OWN_CONFIG)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_read_only_config_property_loads_and_is_left_alone(own_config_module):
    spec = f"{own_config_module}:frozen"
    model = load_user_model(spec, {"in_channels": 4})
    assert dict(model.config) == {"in_channels": 4, "out_channels": 2, "spatial_dims": 2}
    assert build_config(model) == {"factory": spec, "in_channels": 4}
    assert input_channels(model) == 4 and spatial_dims(model) == 2


def test_plain_config_attribute_is_not_replaced(own_config_module):
    model = load_user_model(f"{own_config_module}:plain", {"in_channels": 1})
    assert isinstance(model.config, types.SimpleNamespace) and model.config.name == "plain"
    assert build_config(model) == {"factory": f"{own_config_module}:plain", "in_channels": 1}
    assert input_channels(model) == 1  # a non-mapping config is no obstacle


def test_the_build_record_wins_over_the_model_own_dict(own_config_module):
    spec = f"{own_config_module}:dict_config"
    model = load_user_model(spec, {})
    assert model.config == {"name": "dict", "in_channels": 99}  # untouched
    assert build_config(model) == {"factory": spec}
    assert input_channels(model) == 3  # the first convolution, not the unrelated 99


def test_without_a_record_a_mapping_config_is_read_and_anything_else_ignored():
    from torch import nn

    class Own(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = {"in_channels": 5}
            self.conv = nn.Conv2d(5, 1, 1)

    class Raising(nn.Module):
        @property
        def config(self):
            raise RuntimeError("not built yet")

    assert build_config(Own()) == {"in_channels": 5}
    assert build_config(Raising()) == {} and build_config(object()) == {}
    model = Own()
    record_build(model, {"arch": "x"})
    assert build_config(model) == {"arch": "x"} and model.config == {"in_channels": 5}


def test_checkpoint_mismatch_names_the_factory_of_a_read_only_config_model(own_config_module):
    spec = f"{own_config_module}:frozen"
    model = load_user_model(spec, {"in_channels": 4})
    with pytest.raises(CheckpointError) as info:
        apply_checkpoint(model, {"conv.weight": torch.zeros(2, 3, 3, 3)})
    assert f"does not fit model {spec!r}" in str(info.value) and "in_channels=4" in str(info.value)


@pytest.mark.slow
def test_export_of_config_owning_models_keeps_their_config(own_config_module, tmp_path):
    from unetrt.exporter import ExportConfig, export

    for factory, kwargs in (("frozen", {"in_channels": 2}), ("plain", {})):
        spec = f"{own_config_module}:{factory}"
        result = export(ExportConfig(factory=spec, model_kwargs=kwargs, output_dir=str(tmp_path / factory),
                                     engine=False))
        assert result.manifest.model.factory == spec and result.manifest.model.kwargs == kwargs
        assert result.manifest.input.channels == kwargs.get("in_channels", 3)
        assert result.manifest.verification.passed
