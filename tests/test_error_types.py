"""Every error unetrt raises on bad input is a UnetrtError subclass from unetrt/errors.py.

The source of ``unetrt/`` is scanned: a ``raise`` of a builtin exception, or an exception class
defined outside ``errors.py``, fails unless it is on the small allow-list below (protocol errors
that Python itself expects, and internal signals that never leave their module).
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import unetrt
from unetrt import errors

PACKAGE = Path(unetrt.__file__).parent

#: (path relative to unetrt/, exception name) -> why a builtin is right there.
ALLOWED_RAISES = {
    ("_lazy.py", "AttributeError"): "module __getattr__ protocol (the packages' lazy names)",
    ("bench/backends.py", "KeyError"): "Mapping.__getitem__ protocol (dict-like view of the registry)",
}
#: Exception classes defined outside errors.py that never reach a user.
ALLOWED_CLASSES = {
    ("exporter/trace.py", "NotTraceableError"): "internal signal, caught by exporter/pipeline.py",
}
#: Control flow, not errors: console-script exits, Ctrl-C re-raised after cleanup, iteration.
_CONTROL_FLOW = {"SystemExit", "KeyboardInterrupt", "StopIteration", "GeneratorExit"}
_BUILTIN_EXCEPTIONS = {name for name, obj in vars(builtins).items()
                       if isinstance(obj, type) and issubclass(obj, BaseException)} - _CONTROL_FLOW


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    if isinstance(exc, ast.Name):
        return exc.id
    if isinstance(exc, ast.Attribute):
        return exc.attr
    return None  # bare `raise` re-raises what was caught


def _scan(root: Path = PACKAGE):
    raises, classes = [], []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                name = _raised_name(node)
                if name in _BUILTIN_EXCEPTIONS:
                    raises.append((rel, name, node.lineno))
            elif isinstance(node, ast.ClassDef) and rel != "errors.py" and node.name.endswith(("Error", "Exception")):
                classes.append((rel, node.name, node.lineno))
    return raises, classes


def test_no_builtin_exception_is_raised_outside_the_allow_list():
    raises, _ = _scan()
    bad = [f"unetrt/{rel}:{line} raises {name}" for rel, name, line in raises if (rel, name) not in ALLOWED_RAISES]
    assert not bad, "raise a UnetrtError subclass from unetrt/errors.py instead:\n" + "\n".join(bad)


def test_exception_classes_live_in_errors_py():
    _, classes = _scan()
    bad = [f"unetrt/{rel}:{line} defines {name}" for rel, name, line in classes
           if (rel, name) not in ALLOWED_CLASSES]
    assert not bad, "define exceptions in unetrt/errors.py as UnetrtError subclasses:\n" + "\n".join(bad)


def test_every_error_class_is_a_unetrt_error():
    classes = [obj for obj in vars(errors).values()
               if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__]
    assert len(classes) >= 15
    # control flow (SIGTERM unwinding like Ctrl-C) must not be caught by `except UnetrtError`
    control = {cls for cls in classes if issubclass(cls, KeyboardInterrupt)}
    assert control == {errors.Terminated}
    assert all(issubclass(cls, errors.UnetrtError) for cls in set(classes) - control)


def test_the_scan_sees_what_it_must_refuse(tmp_path):
    """The scanner itself: a builtin raise and a stray exception class are both found."""
    (tmp_path / "bad.py").write_text("class OopsError(Exception):\n    pass\n\n\ndef f():\n"
                                     "    raise ValueError('x')\n\n\ndef g():\n    raise\n")
    raises, classes = _scan(tmp_path)
    assert raises == [("bad.py", "ValueError", 6)] and classes == [("bad.py", "OopsError", 1)]
