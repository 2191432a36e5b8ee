"""examples/kserve/inferenceservice.yaml: the InferenceService against KServe's CRD schema, its pod-level
fields and model container against Kubernetes'."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")
kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (in the dev extra)")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "kserve" / "inferenceservice.yaml"
SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "kserve_isvc_v1beta1_schema.json").read_text())
K8S_VERSION = "1.30.0"
#: Fields of KServe's ModelSpec that are not a Kubernetes container's.
MODEL_ONLY = ("modelFormat", "runtime", "runtimeVersion", "protocolVersion", "storageUri", "storage", "confidential")


def _isvc() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def _pod(isvc: dict) -> dict:
    """The predictor as the pod KServe makes of it: its pod-level fields and the model as the container."""
    predictor = isvc["spec"]["predictor"]
    spec = {k: v for k, v in predictor.items() if k in SCHEMA["pod_fields"]}
    container = {k: v for k, v in predictor["model"].items() if k not in MODEL_ONLY}
    spec["containers"] = [dict(container, name="kserve-container", image="nvcr.io/nvidia/tritonserver:24.10-py3")]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"}, "spec": spec}


def _validate(isvc: dict) -> None:
    jsonschema.validate(isvc, SCHEMA["schema"])
    kv.validate(_pod(isvc), K8S_VERSION, strict=True)


def test_inferenceservice_validates_against_the_crd_and_kubernetes():
    isvc = _isvc()
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    _validate(isvc)


def test_it_serves_the_triton_repository_of_the_kubernetes_example():
    model = _isvc()["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "triton" and model["protocolVersion"] == "v2"
    deployment = next(d for d in yaml.safe_load_all((ROOT / "examples" / "triton" / "kubernetes.yaml").read_text())
                      if d and d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    claim = next(v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v)
    assert model["storageUri"] == f"pvc://{claim}"
    image = pod["containers"][0]["image"]
    assert image.endswith(":" + model["runtimeVersion"])  # the same Triton (and TensorRT) release
    assert int(model["resources"]["limits"]["nvidia.com/gpu"]) == 1


@pytest.mark.parametrize("break_it", [
    lambda s: s["spec"]["predictor"]["model"].__setitem__("storageUrl", "pvc://x"),         # unknown field
    lambda s: s["spec"]["predictor"].__setitem__("minReplicas", "one"),                     # wrong type
    lambda s: s["spec"]["predictor"]["model"]["modelFormat"].pop("name"),                   # required field
    lambda s: s["spec"]["predictor"]["volumes"][0]["emptyDir"].__setitem__("medium", 3),    # pod-level field
    lambda s: s["spec"]["predictor"]["model"]["volumeMounts"][0].pop("mountPath"),          # container field
])
def test_a_broken_inferenceservice_is_rejected(break_it):
    isvc = copy.deepcopy(_isvc())
    break_it(isvc)
    with pytest.raises((jsonschema.ValidationError, kv.ValidationError)):
        _validate(isvc)
