"""Tiny UNet-like ONNX files for the FP16 and TensorRT tests (not a test module).

``tiny_unet(tmp_path_factory, ...)`` exports a 2-level UNet (Conv/BN/ReLU, MaxPool, ConvTranspose or
bilinear Upsample, milesial-style ``F.pad`` to the skip size + cat) with dynamic N/H/W, input ``input``
and output ``logits`` (float32 NCHW), as one self-contained file; each variant is exported once per
session. ``overflow_model`` builds, with onnx.helper, a graph whose middle overflows FP16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_CACHE: dict[tuple, Path] = {}


def _module(width: int, classes: int, bilinear: bool):
    import torch
    import torch.nn.functional as F
    from torch import nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class TinyUNet(nn.Module):
        def __init__(self):
            super().__init__()
            c = width
            self.enc1, self.enc2, self.mid = block(3, c), block(c, 2 * c), block(2 * c, 4 * c)
            if bilinear:
                self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
                self.up1 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
                self.dec2, self.dec1 = block(6 * c, 2 * c), block(3 * c, c)
            else:
                self.up2, self.up1 = nn.ConvTranspose2d(4 * c, 2 * c, 2, 2), nn.ConvTranspose2d(2 * c, c, 2, 2)
                self.dec2, self.dec1 = block(4 * c, 2 * c), block(2 * c, c)
            self.head = nn.Conv2d(c, classes, 1)

        @staticmethod
        def _merge(up, skip):
            dy, dx = skip.size(2) - up.size(2), skip.size(3) - up.size(3)
            up = F.pad(up, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
            return torch.cat([skip, up], dim=1)

        def forward(self, x):
            a = self.enc1(x)
            b = self.enc2(F.max_pool2d(a, 2))
            m = self.mid(F.max_pool2d(b, 2))
            y = self.dec2(self._merge(self.up2(m), b))
            return self.head(self.dec1(self._merge(self.up1(y), a)))

    torch.manual_seed(0)
    model = TinyUNet().eval()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    return model


def tiny_unet(tmp_path_factory, *, width: int = 8, classes: int = 3, bilinear: bool = False):
    """Return ``(path, torch module)`` of the exported tiny UNet (exported once per variant)."""
    import torch

    key = (width, classes, bilinear)
    model = _module(width, classes, bilinear)
    if key not in _CACHE:
        folder = tmp_path_factory.mktemp(f"tiny_unet_w{width}_c{classes}_{'bil' if bilinear else 'convt'}")
        raw, path = folder / "export.onnx", folder / "model.onnx"
        dims = {0: torch.export.Dim("N", min=1, max=64), 2: torch.export.Dim("H", min=8, max=4096),
                3: torch.export.Dim("W", min=8, max=4096)}
        torch.onnx.export(model, (torch.randn(1, 3, 37, 45),), str(raw), dynamo=True, input_names=["input"],
                          output_names=["logits"], dynamic_shapes={"x": dims})
        proto = onnx.load(str(raw))
        proto.metadata_props.append(onnx.StringStringEntryProto(key="unetrt.model", value="tiny_unet"))
        onnx.save(proto, str(path), save_as_external_data=False)
        _CACHE[key] = path
    return _CACHE[key], model


def eager(model, x: np.ndarray) -> np.ndarray:
    """Eager FP32 PyTorch output for a numpy batch."""
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def overflow_model(path: Path) -> Path:
    """Conv -> Mul(2e4) -> Relu -> Mul(5e-5) -> Conv: the three middle nodes overflow in FP16."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(np.array(2e4, np.float32), "big"),
             numpy_helper.from_array(np.array(5e-5, np.float32), "small"),
             numpy_helper.from_array(rng.standard_normal((2, 4, 1, 1)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["input", "w1"], ["a"], name="conv_in", pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["a", "big"], ["b"], name="scale_up"),
             helper.make_node("Relu", ["b"], ["c"], name="relu"),
             helper.make_node("Mul", ["c", "small"], ["d"], name="scale_down"),
             helper.make_node("Conv", ["d", "w2"], ["logits"], name="conv_out")]
    graph = helper.make_graph(
        nodes, "overflow", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2, "H", "W"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def broken_model(path: Path) -> Path:
    """A graph with an op TensorRT has no importer for (node ``bad_node``, op ``FooBar``)."""
    nodes = [helper.make_node("Conv", ["input", "w"], ["a"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("FooBar", ["a"], ["logits"], name="bad_node")]
    graph = helper.make_graph(
        nodes, "broken", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
