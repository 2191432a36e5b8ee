"""User model factories (``pkg.module:factory`` and ``file.py:factory``) and their errors."""

from __future__ import annotations

import itertools
import sys
import textwrap

import pytest
import torch

from unetrt.errors import ModelLoadError
from unetrt.models import load_user_model
from unetrt.models.build_info import build_config

FACTORIES = textwrap.dedent('''
    import torch
    from torch import nn


    class TinyNet(nn.Module):
        def __init__(self, in_channels=3, num_classes=2):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, num_classes, 3, padding=1)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(self.conv(x))


    def build(in_channels=3, num_classes=2):
        return TinyNet(in_channels, num_classes)


    def broken(**kwargs):
        raise ValueError("width 7 is not supported")


    def not_a_model(**kwargs):
        return {"weights": 42}


    class Builders:
        @staticmethod
        def create(num_classes=2):
            return TinyNet(3, num_classes)


    VERSION = "1.0"
''')

_COUNTER = itertools.count()


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Write FACTORIES as a uniquely named module on sys.path; return its name."""
    name = f"unetrt_test_factories_{next(_COUNTER)}"
    (tmp_path / f"{name}.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _error(spec, kwargs=None) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_user_model(spec, kwargs)
    msg = str(info.value)
    assert "\n" not in msg and msg.count(" | ") == 2
    return msg


def test_module_factory(user_module):
    model = load_user_model(f"{user_module}:build", {"num_classes": 5})
    assert type(model).__name__ == "TinyNet" and not model.training
    assert build_config(model) == {"factory": f"{user_module}:build", "num_classes": 5}
    assert not hasattr(model, "config")  # nothing is written on the user's model
    x = torch.randn(2, 3, 9, 11)
    assert model(x).shape == (2, 5, 9, 11)
    torch.testing.assert_close(model(x), model(x))  # eval mode: dropout is off


def test_class_and_dotted_attribute(user_module):
    assert load_user_model(f"{user_module}:TinyNet", {"in_channels": 1}).conv.in_channels == 1
    assert load_user_model(f"{user_module}:Builders.create").conv.out_channels == 2
    assert build_config(load_user_model(f"{user_module}:build", None)) == {"factory": f"{user_module}:build"}


def test_file_path_factory(tmp_path):
    path = tmp_path / "my_nets.py"
    path.write_text(FACTORIES)
    spec = f"{path}:build"
    model = load_user_model(spec, {"in_channels": 4})
    assert model.conv.in_channels == 4 and build_config(model)["factory"] == spec
    assert str(tmp_path) not in sys.path  # the folder is only importable while loading


def test_malformed_spec():
    for spec in ["mypkg.nets", "mypkg.nets:", ":build"]:
        msg = _error(spec)
        assert f"malformed user model spec {spec!r}" in msg and "pkg.module:factory" in msg


def test_module_not_importable():
    msg = _error("no_such_pkg_for_unetrt.nets:build")
    assert "module 'no_such_pkg_for_unetrt.nets'" in msg and "no module named 'no_such_pkg_for_unetrt'" in msg
    assert "PYTHONPATH" in msg


def test_module_with_missing_dependency(tmp_path, monkeypatch):
    (tmp_path / "needs_dep_unetrt.py").write_text("import surely_missing_dep_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    msg = _error("needs_dep_unetrt:build")
    assert "ModuleNotFoundError" in msg and "install 'surely_missing_dep_xyz'" in msg
    sys.modules.pop("needs_dep_unetrt", None)


def test_module_raising_on_import(tmp_path):
    path = tmp_path / "raises_on_import.py"
    path.write_text("raise RuntimeError('no GPU here')\n")
    msg = _error(f"{path}:build")
    assert "RuntimeError: no GPU here" in msg


def test_missing_file(tmp_path):
    msg = _error(f"{tmp_path / 'absent.py'}:build")
    assert "absent.py" in msg and "does not exist" in msg


def test_attribute_missing_suggests_close_name(user_module):
    msg = _error(f"{user_module}:biuld")
    assert f"module '{user_module}' has no attribute 'biuld'" in msg and "did you mean build" in msg


def test_not_callable(user_module):
    msg = _error(f"{user_module}:VERSION")
    assert "'VERSION'" in msg and "not callable" in msg


def test_factory_raising(user_module):
    msg = _error(f"{user_module}:broken", {"width": 7})
    assert "raised ValueError: width 7 is not supported" in msg and "{'width': 7}" in msg


def test_factory_with_wrong_kwargs(user_module):
    msg = _error(f"{user_module}:build", {"widht": 8})
    assert "raised TypeError" in msg and "widht" in msg


def test_result_not_a_module(user_module):
    msg = _error(f"{user_module}:not_a_model")
    assert "returned a dict, not an nn.Module" in msg


def test_kwargs_must_be_a_dict(user_module):
    assert "must be a dict" in _error(f"{user_module}:build", [("num_classes", 2)])


EXITING = textwrap.dedent('''
    import sys


    def quits(**kwargs):
        sys.exit(0)


    def fails(**kwargs):
        raise SystemExit("usage: train.py [-h]")


    def interrupted(**kwargs):
        raise KeyboardInterrupt
''')


def test_factory_calling_sys_exit_is_a_load_error(tmp_path):
    path = tmp_path / "exiting.py"
    path.write_text(EXITING)
    msg = _error(f"{path}:quits")
    assert "SystemExit(0)" in msg and "sys.exit" in msg and "exiting.py:quits" in msg
    assert "'usage: train.py [-h]'" in _error(f"{path}:fails")
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C still interrupts
        load_user_model(f"{path}:interrupted")


def test_module_calling_sys_exit_on_import_is_a_load_error(tmp_path, monkeypatch):
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    msg = _error(f"{tmp_path / 'exits_on_import.py'}:build")
    assert "importing user model file" in msg and "SystemExit(0)" in msg
    monkeypatch.syspath_prepend(str(tmp_path))
    msg = _error("exits_on_import:build")
    assert "importing module 'exits_on_import'" in msg and "SystemExit(0)" in msg
    sys.modules.pop("exits_on_import", None)


def test_unet_export_with_an_exiting_factory_fails_with_one_line(tmp_path):
    from click.testing import CliRunner

    from unetrt.cli.export import export_cmd

    path = tmp_path / "exiting.py"
    path.write_text(EXITING)
    out = tmp_path / "out"
    res = CliRunner().invoke(export_cmd, ["--model", f"{path}:quits", "-o", str(out)])
    assert res.exit_code != 0, res.output
    lines = res.output.strip().splitlines()
    assert "SystemExit(0)" in lines[-1] and "Traceback" not in res.output
    assert not out.exists()
