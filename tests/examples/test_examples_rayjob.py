"""examples/ray/rayjob.yaml: the RayJob against KubeRay's CRD schema, its pod templates against Kubernetes'."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")
kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (in the dev extra)")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ray" / "rayjob.yaml"
SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "rayjob_v1_schema.json").read_text())
K8S_VERSION = "1.30.0"


def _job() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def _templates(job: dict) -> list[dict]:
    cluster = job["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]


def _validate(job: dict) -> None:
    jsonschema.validate(job, SCHEMA["schema"])
    for template in _templates(job):
        kv.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template},
                    K8S_VERSION, strict=True)


def test_rayjob_validates_against_the_crd_and_kubernetes():
    job = _job()
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    _validate(job)


def test_entrypoint_is_a_valid_unet_predict_command_line():
    from click.testing import CliRunner

    from unetrt.cli.predict import predict_cmd

    argv = shlex.split(_job()["spec"]["entrypoint"])
    assert argv[0] == "unet-predict" and "--ray" in argv
    ctx = predict_cmd.make_context("unet-predict", argv[1:], resilient_parsing=True)
    assert ctx.params["ray_address"] == "auto" and ctx.params["ray_actors"] == 2 and ctx.params["ray_gpus"] == 1
    assert CliRunner().invoke(predict_cmd, ["--help"]).exit_code == 0


def test_workers_mount_the_data_the_entrypoint_names():
    job = _job()
    for template in _templates(job):
        mounts = {m["mountPath"] for c in template["spec"]["containers"] for m in c.get("volumeMounts", [])}
        assert "/data" in mounts
    workers = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    gpus = sum(int(c["resources"]["limits"].get("nvidia.com/gpu", 0)) * g["replicas"]
               for g in workers for c in g["template"]["spec"]["containers"])
    argv = shlex.split(job["spec"]["entrypoint"])
    assert gpus >= int(argv[argv.index("--ray-actors") + 1]) * float(argv[argv.index("--ray-gpus") + 1])


@pytest.mark.parametrize("break_it", [
    lambda j: j["spec"].__setitem__("entrypont", "typo"),                                    # unknown field
    lambda j: j["spec"].__setitem__("shutdownAfterJobFinishes", "yes"),                       # wrong type
    lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].__setitem__("replicas", "two"),
    lambda j: j["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    .__setitem__("imagePullPolicy", 3),                                                      # inside a pod template
])
def test_a_broken_rayjob_is_rejected(break_it):
    job = copy.deepcopy(_job())
    break_it(job)
    with pytest.raises((jsonschema.ValidationError, kv.ValidationError)):
        _validate(job)
