"""Install ``tensorrt-stubs`` (type stubs of TensorRT 10.13's Python API) where only mypy looks.

``pip install tensorrt-stubs`` cannot be used as is: it requires the ``tensorrt`` sdist (which cannot
build without NVIDIA's libraries), and its ``tensorrt/`` folder of ``.pyi`` files would turn ``import
tensorrt`` into an empty namespace package in the environment. So it is installed with ``--no-deps``
into ``TARGET`` (``.venv/typestubs``), which mypy reads through ``MYPYPATH``. The published 10.13.0.35.1
stubs contain a few lines Python cannot parse (a parameter named ``in``; a parameter without a default
after defaulted ones); those lines are repaired in place so mypy can read the file.

Usage: ``python scripts/trt_stubs.py TARGET``
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

VERSION = "10.13.0.35.1"


def repair(path: Path) -> int:
    """Make ``path`` parseable; returns the number of lines changed."""
    lines = path.read_text().splitlines(keepends=True)
    changed = 0
    for _ in range(200):
        try:
            ast.parse("".join(lines))
            return changed
        except SyntaxError as exc:
            i = (exc.lineno or 1) - 1
            fixed = re.sub(r"\bin: ", "in_: ", lines[i])
            if fixed == lines[i]:
                fixed = _default_after_default(lines[i])
            if fixed == lines[i]:
                raise SystemExit(f"{path}:{i + 1}: cannot repair: {exc.msg}")
            lines[i] = fixed
            changed += 1
            path.write_text("".join(lines))
    raise SystemExit(f"{path}: too many syntax errors")


def _default_after_default(line: str) -> str:
    """``f(a: int = 1, b: int)`` -> ``f(a: int = 1, b: int = ...)``."""
    head, _, rest = line.partition("(")
    params, close, tail = rest.rpartition(")")
    out, seen_default = [], False
    for part in params.split(", "):
        if "=" in part:
            seen_default = True
        elif seen_default and ":" in part and not part.lstrip().startswith("*"):
            part += " = ..."
        out.append(part)
    return f"{head}({', '.join(out)}{close}{tail}"


def main(target: str) -> None:
    dest = Path(target)
    stub = dest / "tensorrt_bindings" / "tensorrt.pyi"
    if not stub.is_file():
        subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps",
                        "--target", str(dest), f"tensorrt-stubs=={VERSION}"], check=True)
    print(f"tensorrt-stubs {VERSION} in {dest}: {repair(stub)} line(s) repaired")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".venv/typestubs")
