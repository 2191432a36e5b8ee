"""InputConstraint and the Runner base on their own (no model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetrt.errors import InputError, RunnerError
from unetrt.runtime.base import InputConstraint, Runner, TensorMeta, apply_manifest_input, dtype_name


class EchoRunner(Runner):
    """Returns its input: exercises the base-class checks and lifecycle."""

    def __init__(self, spec: InputConstraint):
        super().__init__("echo")
        self.spec, self.activations = spec, 0

    def _activate(self):
        self.activations += 1
        self._inputs = {self.spec.name: self.spec}
        self._outputs = {"y": TensorMeta(self.spec.dtype, self.spec.shape)}

    def _infer(self, feed, to_host):
        return {"y": np.asarray(feed[self.spec.name])}

    def _deactivate(self):
        pass


def test_static_shape_message():
    spec = InputConstraint("input", "float32", (1, 3, 64, 64))
    assert spec.describe() == "1x3x64x64 float32"
    with EchoRunner(spec) as runner:
        with pytest.raises(InputError, match=r"W is 32, not 64 \| expected 1x3x64x64 float32"):
            runner.infer({"input": np.zeros((1, 3, 64, 32), np.float32)})
        assert runner.infer({"input": np.ones((1, 3, 64, 64), np.float32)})["y"].shape == (1, 3, 64, 64)


def test_manifest_section_tightens_graph_dims():
    graph = InputConstraint("input", "float32", (None, 3, None, None))
    spec = apply_manifest_input(graph, {"min_size": 32, "alignment": 8, "static_shape": None})
    assert (spec.min_size, spec.alignment) == (32, 8)
    assert spec.describe() == "Nx3xHxW float32, N >= 1, H, W >= 32, H and W multiples of 8"
    static = apply_manifest_input(graph, {"static_shape": [2, 3, 64, 64]})
    assert static.shape == (2, 3, 64, 64)
    assert apply_manifest_input(graph, None) is graph


def test_dtype_names():
    assert dtype_name(np.zeros(1, np.float16)) == "float16"
    assert dtype_name(torch.zeros(1, dtype=torch.bfloat16)) == "bfloat16"
    assert dtype_name(torch.float32) == "float32"


def test_activation_is_idempotent_and_feed_must_be_a_mapping():
    runner = EchoRunner(InputConstraint("x", "float32", (None, 4)))
    runner.activate()
    runner.activate()
    assert runner.activations == 1
    with pytest.raises(InputError, match="a dict"):
        runner.infer([np.zeros((1, 4), np.float32)])
    with pytest.raises(InputError, match="list"):
        runner.infer({"x": [[0.0] * 4]})
    assert "N >= 1" not in runner.input_constraints["x"].describe()  # not NCHW: generic names
    runner.deactivate()
    with pytest.raises(RunnerError, match="use `with runner:`"):
        runner.output_metadata  # noqa: B018
