"""Write tests/fixtures/rayjob_v1_schema.json from KubeRay's RayJob CRD (ray.io_rayjobs.yaml).

The CRD's openAPIV3Schema for ``ray.io/v1`` is kept with the descriptions dropped and every object that
lists its properties closed (``additionalProperties: false``, as ``kubectl --validate=strict`` treats
unknown fields); the embedded pod templates are cut out, because the test validates them with
kubernetes-validate against the Kubernetes schema itself.

    python scripts/rayjob_schema.py path/to/ray.io_rayjobs.yaml [--source "kuberay COMMIT"]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rayjob_v1_schema.json"
POD_TEMPLATES = ("template", "submitterPodTemplate")


def prune(node):
    if isinstance(node, list):
        return [prune(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties":
            out[key] = {name: ({"type": "object"} if name in POD_TEMPLATES else prune(sub))
                        for name, sub in value.items()}
        else:
            out[key] = prune(value)
    if "properties" in out and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("crd", type=Path)
    ap.add_argument("--source", default="", help="where the CRD came from (repository and commit)")
    args = ap.parse_args()
    raw = args.crd.read_bytes()
    crd = yaml.safe_load(raw)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = prune(version["schema"]["openAPIV3Schema"])
    doc = {"crd": crd["metadata"]["name"], "version": "v1", "source": args.source,
           "sha256": hashlib.sha256(raw).hexdigest(), "schema": schema}
    OUT.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
