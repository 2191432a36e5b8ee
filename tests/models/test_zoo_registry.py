"""create_model / get_spec behaviour and argument validation."""

from __future__ import annotations

import pytest

import subprocess
import sys
import textwrap

from click.testing import CliRunner

from unetrt.errors import ModelConfigError, RegistrationError, UnetrtError, UnknownModelError
from unetrt.models import create_model, get_spec, register_model


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
    with pytest.raises(ModelConfigError, match="unexpected keyword.*bilinear"):
        create_model("paper", width=4, bilinear=True)


def test_misspelt_kwarg_names_it_lists_the_valid_ones_and_suggests_the_close_one():
    with pytest.raises(ModelConfigError) as info:
        create_model("milesial", widht=4)
    msg = str(info.value)
    assert isinstance(info.value, UnetrtError) and "\n" not in msg and msg.count(" | ") == 2
    assert "'widht'" in msg and "bilinear, in_channels, num_classes, width" in msg
    assert "did you mean 'widht' -> 'width'?" in msg
    with pytest.raises(ModelConfigError) as info:  # nothing close: say what to drop
        create_model("milesial", depht=4)
    assert "'depht'" in str(info.value) and "drop 'depht'" in str(info.value)


def test_unknown_kwarg_on_the_command_line_is_one_line(tmp_path):
    from unetrt.cli.export import export_cmd

    res = CliRunner().invoke(export_cmd, ["--arch", "milesial", "--model-kwargs", '{"depht": 4}',
                                          "-o", str(tmp_path / "out")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    last = res.output.strip().splitlines()[-1]
    assert "'depht'" in last and "bilinear, in_channels, num_classes, width" in last


def test_bad_registrations_are_registration_errors():
    with pytest.raises(RegistrationError, match="already registered"):
        register_model("milesial", family="x", description="x")(lambda **kw: None)
    with pytest.raises(RegistrationError, match="geometry='odd'"):
        register_model("new-one", family="x", description="x", geometry="odd")


_ISOLATED_REGISTRY = textwrap.dedent("""
    import importlib, sys, types
    from pathlib import Path
    import unetrt
    pkg = types.ModuleType("unetrt.models")          # the package without its __init__
    pkg.__path__ = [str(Path(unetrt.__file__).parent / "models")]
    sys.modules["unetrt.models"] = pkg
    registry = importlib.import_module("unetrt.models.registry")
    print(registry.list_models())
    print(sorted(m for m in sys.modules if m.startswith("unetrt.models.")))
""")


def test_registry_alone_imports_no_variant():
    """The registry knows no family: alone it lists nothing and imports no variant module (only the
    build record it writes)."""
    out = subprocess.run([sys.executable, "-c", _ISOLATED_REGISTRY], capture_output=True, text=True, check=True)
    listed, modules = out.stdout.strip().splitlines()
    assert listed == "[]" and modules == "['unetrt.models.build_info', 'unetrt.models.registry']"


def test_package_import_registers_families_below_it():
    """``-X importtime``: the families are imported by the package, never from inside the registry."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import unetrt.models"],
                         capture_output=True, text=True, check=True).stderr
    tree = [(len(name) - len(name.lstrip()), name.strip()) for name in
            (line.rsplit("|", 1)[-1] for line in out.splitlines() if "|" in line)]
    names = [n for _, n in tree]
    assert {"unetrt.models.milesial", "unetrt.models.registry", "unetrt.models.resnet"} <= set(names)
    for i, (depth, name) in enumerate(tree):  # importtime lists children before their parent, deeper
        if name == "unetrt.models.registry":
            children = []
            for d, n in reversed(tree[:i]):
                if d <= depth:
                    break
                children.append(n)
            families = [c for c in children if c.startswith("unetrt.models.") and c != "unetrt.models.build_info"]
            assert not families, children


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
