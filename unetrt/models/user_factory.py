"""User models: ``pkg.module:factory`` or ``path/to/file.py:factory``.

The factory is resolved with :func:`pkgutil.resolve_name` (a file path is first imported under a
private module name), called with the given keyword arguments, and must return an ``nn.Module``.
The result is put in eval mode and its build (``{"factory": spec, **kwargs}``) is recorded beside it
(:func:`unetrt.models.build_info.build_config`; no attribute of the model is written), so it goes
through the exporter exactly like a zoo variant. Whatever the user's code raises on import or call,
``SystemExit`` included, becomes one :class:`~unetrt.errors.ModelLoadError` line; ``KeyboardInterrupt``
still interrupts.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import pkgutil
import sys
from typing import Any

from torch import nn

from ..errors import ModelLoadError
from .build_info import record_build

_FORM = "pkg.module:factory or path/to/file.py:factory"


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) (the code called sys.exit)"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _is_path(module: str) -> bool:
    return module.endswith(".py") or "/" in module or os.sep in module


def _import_file(path: str, spec: str) -> str:
    """Import a Python file under a private module name (its folder is importable meanwhile); return the name."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise ModelLoadError(f"user model file {path!r} (from {spec!r}) does not exist",
                             f"an existing .py file in {_FORM}", "check the path before the colon")
    digest = hashlib.sha1(full.encode()).hexdigest()[:10]
    name = f"unetrt_user_{os.path.splitext(os.path.basename(full))[0]}_{digest}"
    loader_spec = importlib.util.spec_from_file_location(name, full)
    if loader_spec is None or loader_spec.loader is None:
        raise ModelLoadError(f"cannot import {path!r} (from {spec!r}) as a Python module",
                             "a .py file", "rename the file to end in .py")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    folder = os.path.dirname(full)
    sys.path.insert(0, folder)
    try:
        loader_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise ModelLoadError(f"importing user model file {path!r} failed with {_one_line(exc)}",
                             "a file that imports cleanly", "fix the error in that file") from exc
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return name


def _missing_attribute(module: str, attr: str, label: str, spec: str) -> ModelLoadError:
    """The error for an attribute path that does not resolve, with close names of the missing part."""
    obj: Any = sys.modules.get(module)
    for part in attr.split("."):
        if obj is None or not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")] if obj is not None else []
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "check the name after the colon"
            return ModelLoadError(f"{label} has no attribute {part!r} (from {spec!r})",
                                  "a factory function or nn.Module class", hint)
        obj = getattr(obj, part)
    return ModelLoadError(f"{label} has no attribute {attr!r} (from {spec!r})",  # pragma: no cover
                          "a factory function or nn.Module class", "check the name after the colon")


def _resolve(module: str, attr: str, label: str, spec: str) -> Any:
    """``pkgutil.resolve_name(module:attr)``, every failure turned into a ModelLoadError."""
    try:
        return pkgutil.resolve_name(f"{module}:{attr}")
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise ModelLoadError(f"module {module!r} (from {spec!r}) is not importable: no module named "
                                 f"{exc.name!r}", f"a module on the Python path in {_FORM}",
                                 "install the package, add its folder to PYTHONPATH, or pass a "
                                 "path/to/file.py:factory") from exc
        raise ModelLoadError(f"importing module {module!r} (from {spec!r}) failed with {_one_line(exc)}",
                             "its dependencies to be installed", f"install {exc.name!r}") from exc
    except AttributeError as exc:
        if module in sys.modules:  # the import worked: the attribute path is wrong
            raise _missing_attribute(module, attr, label, spec) from exc
        raise ModelLoadError(f"importing module {module!r} (from {spec!r}) failed with {_one_line(exc)}",
                             "a module that imports cleanly", "fix the error in that module") from exc
    except (Exception, SystemExit) as exc:
        raise ModelLoadError(f"importing module {module!r} (from {spec!r}) failed with {_one_line(exc)}",
                             "a module that imports cleanly", "fix the error in that module") from exc


def load_user_model(spec: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Import and call a user model factory.

    Args:
        spec: ``"pkg.module:factory"`` or ``"path/to/file.py:factory"`` (the attribute may be
            dotted, e.g. ``"pkg.mod:Builder.create"``).
        kwargs: Keyword arguments for the factory.

    Returns:
        The model, in eval mode; ``build_config(model)`` is ``{"factory": spec, **kwargs}``.

    Raises:
        ModelLoadError: malformed spec, import failure, missing attribute, the factory
            raising (``SystemExit`` included), or a result that is not an ``nn.Module``.
    """
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict):
        raise ModelLoadError(f"user model kwargs must be a dict, got {type(kwargs).__name__}",
                             "a dict of keyword arguments", "pass e.g. {'num_classes': 3}")
    module_part, sep, attr = str(spec).rpartition(":")
    if not sep or not module_part.strip() or not attr.strip():
        raise ModelLoadError(f"malformed user model spec {spec!r}", _FORM,
                             "separate the module and the factory with a colon, e.g. mypkg.nets:build_unet")
    if _is_path(module_part):
        module, label = _import_file(module_part, spec), f"file {module_part!r}"
    else:
        module, label = module_part, f"module {module_part!r}"
    factory = _resolve(module, attr, label, spec)
    if not callable(factory):
        raise ModelLoadError(f"{attr!r} in {label} is a {type(factory).__name__}, not callable",
                             "a factory function or nn.Module class", "point the spec at a callable")
    try:
        model = factory(**kwargs)
    except (Exception, SystemExit) as exc:
        raise ModelLoadError(f"user model factory {spec!r} raised {_one_line(exc)}",
                             f"it to build a model from kwargs {kwargs!r}",
                             "fix the factory or the keyword arguments") from exc
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"user model factory {spec!r} returned a {type(model).__name__}, "
                             "not an nn.Module",
                             "an nn.Module instance", "return the model object from the factory")
    record_build(model, {"factory": spec, **kwargs})
    return model.eval()
