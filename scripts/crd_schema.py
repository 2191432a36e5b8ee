"""What the CRD-schema fixture writers share (``rayjob_schema.py``, ``kserve_schema.py``): read a CRD file, take
one version's openAPIV3Schema, shape it, close its objects, write it with where it came from and its sha256."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import yaml


def closed(node: Any, typed_only: tuple[str, ...] = ()) -> Any:
    """``node`` without descriptions, every object that lists its properties closed (``additionalProperties:
    false``, as ``kubectl --validate=strict`` treats unknown fields) unless it preserves unknown fields; a
    property named in ``typed_only`` becomes ``{"type": "object"}`` (validated elsewhere)."""
    if isinstance(node, list):
        return [closed(n, typed_only) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties":
            out[key] = {name: ({"type": "object"} if name in typed_only else closed(sub, typed_only))
                        for name, sub in value.items()}
        else:
            out[key] = closed(value, typed_only)
    if "properties" in out and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def write_fixture(description: str, version: str, out: Path, shape: Callable[[dict], dict],
                  extra: dict[str, Any] | None = None) -> None:
    """The command line of a fixture writer: ``CRD [--source TEXT]`` -> ``out``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("crd", type=Path)
    ap.add_argument("--source", default="", help="where the CRD came from (repository and commit)")
    args = ap.parse_args()
    raw = args.crd.read_bytes()
    crd = yaml.safe_load(raw)
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
    doc = {"crd": crd["metadata"]["name"], "version": version, "source": args.source,
           "sha256": hashlib.sha256(raw).hexdigest(), **(extra or {}), "schema": shape(schema)}
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")
