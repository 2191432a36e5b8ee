"""Write tests/fixtures/rayjob_v1_schema.json from KubeRay's RayJob CRD (ray.io_rayjobs.yaml).

The CRD's openAPIV3Schema for ``ray.io/v1`` is kept with the descriptions dropped and every object that
lists its properties closed (``additionalProperties: false``, as ``kubectl --validate=strict`` treats
unknown fields); the embedded pod templates are cut out, because the test validates them with
kubernetes-validate against the Kubernetes schema itself.

    python scripts/rayjob_schema.py path/to/ray.io_rayjobs.yaml [--source "kuberay COMMIT"]
"""

from __future__ import annotations

from pathlib import Path

from crd_schema import closed, write_fixture

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rayjob_v1_schema.json"
POD_TEMPLATES = ("template", "submitterPodTemplate")


def main() -> None:
    write_fixture(__doc__.splitlines()[0], "v1", OUT, lambda schema: closed(schema, POD_TEMPLATES))


if __name__ == "__main__":
    main()
