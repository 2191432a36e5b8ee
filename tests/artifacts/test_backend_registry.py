"""One registry drives load(), unet-predict --backend and unet-bench --backends: a backend added by
registration alone shows up in all three."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from unetrt.errors import UnetrtError
from unetrt.runtime import backends as registry
from unetrt.runtime import load
from unetrt.runtime.backends import Backend, RunOptions
from unetrt.runtime.base import InputConstraint, Runner, TensorMeta


class EchoRunner(Runner):
    """Returns the input's per-pixel channel mean as a 1-class 'logit': enough to see it ran."""

    def __init__(self, path, *, manifest=None, name=None, scale=1.0, threads=None):
        super().__init__(name or "echo", manifest)
        self.path, self.scale, self.threads = path, scale, threads

    def _activate(self) -> None:
        section = self.manifest.input
        self._inputs = {"input": InputConstraint("input", "float32", (None, section.channels, None, None),
                                                 min_size=section.min_size or 1, alignment=section.alignment)}
        self._outputs = {"logits": TensorMeta("float32", (None, 1, None, None))}

    def _infer(self, feed, to_host):
        return {"logits": self.scale * feed["input"].mean(axis=1, keepdims=True)}

    def _deactivate(self) -> None:
        pass


@pytest.fixture
def echo_backend():
    backend = registry.register(Backend(
        "echo-test", family="echo", runner=EchoRunner, kind="onnx", precision="fp32", devices=("cpu",),
        description="test backend that echoes the channel mean", aliases=("echo-alias",), options={"scale": 2.0},
        adapt=lambda run: {"threads": run.threads}))
    yield backend
    registry.unregister("echo-test")
    assert "echo-test" not in registry.names()


def test_registration_reaches_load(echo_backend, contract_export):
    x = np.random.default_rng(0).random((1, 3, 32, 48), dtype=np.float32)
    for name in ("echo-test", "echo-alias", "echo"):  # name, alias and family all resolve
        with load(contract_export, backend=name) as runner:
            assert isinstance(runner, EchoRunner) and runner.path.name == "model.onnx"
            assert runner.name == "echo-test" and runner.scale == 2.0
            np.testing.assert_allclose(runner.infer({"input": x})["logits"], 2.0 * x.mean(axis=1, keepdims=True))
            assert runner.manifest.input.alignment == 16  # it got the typed manifest
    assert "chose model.onnx (echo-test)" in load(contract_export, backend="echo-test").notes
    opened = echo_backend.open(contract_export / "model.onnx", run=RunOptions(threads=3))
    assert opened.threads == 3  # the shared run settings go through the backend's own adapter


def test_registration_reaches_bench_and_predict_help(echo_backend):
    from unetrt.cli import main

    for command in ("bench", "predict"):
        result = CliRunner().invoke(main, [command, "--help"], terminal_width=400)
        assert result.exit_code == 0
        assert "echo-test (test backend that echoes the channel mean)" in " ".join(result.output.split())
    from unetrt.bench.backends import BACKENDS, parse_backends

    assert "echo-test" in BACKENDS and parse_backends("eager,echo-alias") == ["eager", "echo-test"]


def test_registration_refuses_taken_names(echo_backend):
    clash = Backend("ort", family="x", runner=EchoRunner, kind="onnx", precision="fp32", devices=("cpu",),
                    description="clash")
    with pytest.raises(UnetrtError, match="'ort' is already registered"):
        registry.register(clash)
    with pytest.raises(UnetrtError, match="kind 'tflite'"):
        Backend("x", family="x", runner=EchoRunner, kind="tflite", precision="fp32", devices=("cpu",),
                description="bad")
    with pytest.raises(UnetrtError, match="unknown backend 'nope'.*echo-test"):
        registry.get("nope")


def test_builtin_registry_and_choice(contract_export):
    assert {"eager", "eager-fp16", "ort", "ort-fp16", "ort-cuda", "ort-trt", "trt", "trt-fp16"} <= \
        set(registry.names())
    assert registry.get("torch").name == "eager" and registry.get("ort-cpu").name == "ort"
    assert [b.name for b in registry.resolve("trt")] == ["trt-fp16", "trt", "trt-int8"]
    from unetrt.artifacts.manifest import Manifest
    from unetrt.runtime.loader import choose

    manifest = Manifest.read(contract_export)
    backend, path, skipped = choose(manifest, contract_export, cuda=False)
    assert (backend.name, path.name) == ("ort", "model.onnx")
    assert "trt: needs a CUDA GPU (none visible)" in skipped and any("ort-cuda: " in s for s in skipped), skipped
    with pytest.raises(UnetrtError, match="ort-fp16: the export has no fp16 ONNX"):
        choose(manifest, contract_export, precision="fp16", cuda=False)
    with pytest.raises(UnetrtError, match="no TensorRT engine can run.*trt-fp16: needs a CUDA GPU"):
        choose(manifest, contract_export, "trt", cuda=False)
