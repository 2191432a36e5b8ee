"""Write tests/fixtures/kserve_isvc_v1beta1_schema.json from KServe's InferenceService CRD
(config/crd/full/serving.kserve.io_inferenceservices.yaml).

The CRD's openAPIV3Schema for ``serving.kserve.io/v1beta1`` is kept with the descriptions and ``status``
dropped and every object that lists its properties closed (``additionalProperties: false``, as
``kubectl --validate=strict`` treats unknown fields). To keep the fixture small, the Kubernetes core types
that KServe inlines into each component (pod-level fields such as ``volumes`` or ``affinity``, the
``containers`` lists, the deprecated per-framework specs) and the components other than ``predictor`` are
cut down to their JSON type; the test validates the pod-level fields an example uses with
kubernetes-validate against the Kubernetes schema itself.

    python scripts/kserve_schema.py path/to/serving.kserve.io_inferenceservices.yaml [--source "kserve COMMIT"]
"""

from __future__ import annotations

from pathlib import Path

from crd_schema import closed, write_fixture

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "kserve_isvc_v1beta1_schema.json"
#: PodSpec fields of a component (checked by kubernetes-validate as a Pod's spec, not by this schema).
POD_FIELDS = ("activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers", "dnsConfig",
              "dnsPolicy", "enableServiceLinks", "hostAliases", "hostIPC", "hostNetwork", "hostPID", "hostUsers",
              "hostname", "hostnameOverride", "imagePullSecrets", "initContainers", "nodeName", "nodeSelector",
              "os", "overhead", "preemptionPolicy", "priority", "priorityClassName", "readinessGates",
              "resourceClaims", "restartPolicy", "runtimeClassName", "schedulerName", "schedulingGates",
              "securityContext", "serviceAccount", "serviceAccountName", "setHostnameAsFQDN",
              "shareProcessNamespace", "subdomain", "terminationGracePeriodSeconds", "tolerations",
              "topologySpreadConstraints", "volumes")
FRAMEWORKS = ("huggingface", "lightgbm", "onnx", "paddle", "pmml", "pytorch", "sklearn", "tensorflow", "triton",
              "xgboost", "workerSpec")


def type_only(schema: dict) -> dict:
    return {"type": schema.get("type", "object")}


def shape(schema: dict) -> dict:
    """No ``status``; every component but ``predictor``, and the predictor's pod fields and framework specs, cut
    to their JSON type; then closed."""
    schema["properties"].pop("status", None)
    components = schema["properties"]["spec"]["properties"]
    for name in list(components):
        if name != "predictor":
            components[name] = type_only(components[name])
    predictor = components["predictor"]["properties"]
    for name in POD_FIELDS + FRAMEWORKS:
        if name in predictor:
            predictor[name] = type_only(predictor[name])
    return closed(schema)


def main() -> None:
    write_fixture(__doc__.splitlines()[0], "v1beta1", OUT, shape, extra={"pod_fields": list(POD_FIELDS)})


if __name__ == "__main__":
    main()
