"""Models returning a dict or a tuple: every output exported with a stable name, verified, returned."""

import numpy as np
import onnx
import pytest
import torch

from tests.fixtures.thirdparty import DeepSupervision, DictHeads
from unetrt.exporter import ExportConfig, export
from unetrt.exporter.onnx_io import output_names
from unetrt.runtime import TorchRunner, load


def _dims(vi):
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def test_output_names():
    t = torch.zeros(1)
    assert output_names(t) == ["logits"]
    assert output_names([t, t, t]) == ["logits", "logits_1", "logits_2"]
    assert output_names({"seg": t, "aux maps": (t, t)}) == ["seg", "aux_maps_0", "aux_maps_1"]


@pytest.mark.slow
def test_dict_outputs_are_exported_verified_and_returned_by_every_runner(tmp_path):
    result = export(ExportConfig(factory="tests.fixtures.thirdparty:dict_heads", model_kwargs={"in_channels": 1},
                                 output_dir=str(tmp_path), engine=False))
    m = result.manifest
    assert m.output.name == "seg" and m.output.names == ["seg", "boundary"]
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert [o.name for o in proto.graph.output] == ["seg", "boundary"]
    assert _dims(proto.graph.output[1]) == ["batch", 1, "height", "width"]
    row = m.verification.sizes[0]
    assert [o.name for o in row.outputs] == ["seg", "boundary"] and all(o.passed for o in row.outputs)
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((1, 1, 19, 23)).astype(np.float32)
    with load(str(tmp_path), backend="ort") as ort_runner:
        got = ort_runner.infer({"input": x})
    assert list(got) == ["seg", "boundary"] and got["seg"].shape == (1, 2, 19, 23) and got["boundary"].shape == (1, 1, 19, 23)
    model = DictHeads(in_channels=1)
    with TorchRunner(model, manifest=m) as eager:
        ref = eager.infer({"input": x})
    assert list(ref) == ["seg", "boundary"]
    with torch.no_grad():
        direct = model(torch.from_numpy(x))
    np.testing.assert_array_equal(ref["boundary"], direct["boundary"].numpy())


@pytest.mark.slow
def test_deep_supervision_tuple_gets_numbered_names_and_its_own_dims(tmp_path):
    result = export(ExportConfig(factory="tests.fixtures.thirdparty:deep_supervision",
                                 model_kwargs={"in_channels": 1}, output_dir=str(tmp_path), engine=False))
    assert result.manifest.output.names == ["logits", "logits_1"]
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert _dims(proto.graph.output[1])[2:] == ["out_height_1", "out_width_1"]
    assert all(len(r.outputs) == 2 and r.passed for r in result.manifest.verification.sizes)
    with TorchRunner(DeepSupervision(in_channels=1)) as runner:  # no manifest: names still numbered
        out = runner.infer({"input": np.zeros((1, 1, 8, 8), np.float32)})
    assert list(out) == ["logits", "logits_1"] and out["logits_1"].shape == (1, 1, 4, 4)


def test_a_wrong_second_output_fails_verification():
    from unetrt.exporter.verify import SweepSize, verify

    class Drift(torch.nn.Module):  # eager differs from the graph only in the second output
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 1)
            self.drift = False

        def forward(self, x):
            y = self.conv(x)
            return y, y * (1.5 if self.drift else 1.0)

    model = Drift().eval()
    path = pytest.importorskip("tempfile").mkdtemp() + "/m.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), path, dynamo=False, input_names=["input"],
                      output_names=["logits", "logits_1"], dynamic_axes={"input": {2: "h", 3: "w"}})
    model.drift = True
    rows = verify(model, path, 1, [SweepSize(1, 8, 8)])
    assert not rows[0].passed and rows[0].reason.startswith("output 'logits_1'")
    assert rows[0].outputs[0].passed and not rows[0].outputs[1].passed
