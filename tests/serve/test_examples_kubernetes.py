"""examples/triton/kubernetes.yaml against the Kubernetes OpenAPI schema (kubernetes-validate, strict)."""

from __future__ import annotations

from pathlib import Path

import pytest

kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (in the dev extra)")
yaml = pytest.importorskip("yaml")

MANIFEST = Path(__file__).resolve().parents[2] / "examples" / "triton" / "kubernetes.yaml"
K8S_VERSION = "1.30.0"


def _docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def test_deployment_and_service_validate_strictly():
    docs = _docs()
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    for doc in docs:
        kv.validate(doc, K8S_VERSION, strict=True)
    deployment, service = docs
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert "--model-repository=/models" in container["args"]
    assert {p["containerPort"] for p in container["ports"]} == {8000, 8001, 8002}
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_validator_rejects_a_broken_manifest():
    deployment = _docs()[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, K8S_VERSION, strict=True)
