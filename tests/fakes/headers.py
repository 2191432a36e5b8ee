"""Where NVIDIA's public TensorRT headers (10.16, 11.1) are, for compile checks and stand-in checks.

They are not part of this repository (Apache-2.0 copies kept beside it). Looked up, in order: the
``UNETRT_TRT_HEADERS`` environment variable, then ``shared/reference/tensorrt-headers`` in the repository's
parent or any folder above it (a checkout at ``/work/main`` or a worktree at ``/work/wt/x`` both find
``/work/shared``). ``None`` when absent: tests then skip and say so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("10.16", "11.1")


def headers_root() -> Path | None:
    """The folder holding ``10.16/NvInfer.h`` and ``11.1/NvInfer.h``, or ``None``."""
    env = os.environ.get("UNETRT_TRT_HEADERS")
    candidates = [Path(env)] if env else []
    candidates += [p / "shared" / "reference" / "tensorrt-headers" for p in ROOT.parents]
    for path in candidates:
        if all((path / v / "NvInfer.h").is_file() for v in VERSIONS):
            return path
    return None


SKIP_REASON = ("NVIDIA's TensorRT headers not found: set UNETRT_TRT_HEADERS to a folder with 10.16/ and 11.1/ "
               "(copies of NVIDIA/TensorRT's include/), or keep them in ../shared/reference/tensorrt-headers")


def header_enum(version: str, name: str) -> dict[str, int]:
    """``{member: value}`` of ``enum class name`` in the headers of ``version`` (``kFOO`` -> ``FOO``)."""
    root = headers_root()
    text = "".join((root / version / f).read_text() for f in ("NvInfer.h", "NvInferRuntime.h",
                                                                "NvInferRuntimeBase.h"))
    body = re.search(r"enum class " + name + r"\s*:\s*\w+\s*\{(.*?)\};", text, re.S)[1]
    body = re.sub(r"//[^\n]*", "", body)
    out: dict[str, int] = {}
    for member, value in re.findall(r"\bk([A-Z0-9_]+)\s*(?:TRT_DEPRECATED_ENUM\s*)?=\s*(\w+)", body):
        out[member] = int(value) if value.isdigit() else out[value[1:]]
    return out
