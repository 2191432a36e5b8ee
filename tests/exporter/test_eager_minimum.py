"""A guard-derived minimum the model's own code refuses (issue 19.8): instance norm over a 1x1
bottleneck passes torch.export's guards at 16x16 but fails in eager. The minimum is probed in
eager, every axis at it, and the sweep always runs the square (cubic) minimum."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unetrt.errors import ExportError
from unetrt.exporter.probe import eager_minimum
from unetrt.exporter.verify import SweepSize, sweep_sizes

FACTORY = "tests.exporter.test_eager_minimum:SkipInstanceNorm"


class SkipInstanceNorm(nn.Module):
    """Four 2x poolings to an instance-normed bottleneck; on the way up each 2x upsampling is padded
    to its skip's size when they differ (a branch on sizes, as in MONAI's BasicUNetPlusPlus): eager
    runs at odd sizes, torch.export's guards give multiples of 16 from 16, and at 16x16 the
    bottleneck is 1x1, which instance norm refuses."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, spatial_dims: int = 2):
        super().__init__()
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        norm = nn.InstanceNorm3d if spatial_dims == 3 else nn.InstanceNorm2d
        self.pool = nn.MaxPool3d(2) if spatial_dims == 3 else nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.enc = conv(in_channels, 4, 3, padding=1)
        self.norm = norm(4)
        self.head = conv(4, num_classes, 1)

    def forward(self, x):
        skips = [self.enc(x)]
        for _ in range(4):
            skips.append(self.pool(skips[-1]))
        y = self.norm(skips.pop())
        while skips:
            skip = skips.pop()
            y = self.up(y)
            if y.shape[2:] != skip.shape[2:]:
                pad = []
                for axis in range(skip.dim() - 1, 1, -1):
                    pad += [0, skip.shape[axis] - y.shape[axis]]
                y = F.pad(y, pad, mode="replicate")
            y = y + skip
        return self.head(y)


def test_eager_minimum_raises_a_minimum_eager_refuses():
    model = SkipInstanceNorm().eval()
    size, note = eager_minimum(model, 1, 16, 16, 2)
    assert size == 32
    assert note.startswith("eager probe: the traced minimum 16x16 fails in eager (")
    assert "the minimum size is 32" in note
    assert eager_minimum(model, 1, 16, 32, 2) == (32, None)
    assert eager_minimum(SkipInstanceNorm(spatial_dims=3).eval(), 1, 16, 16, 3)[0] == 32


def test_eager_minimum_gives_the_models_error_when_nothing_runs():
    class Never(nn.Module):
        def forward(self, x):
            raise RuntimeError("weights not loaded")

    with pytest.raises(ExportError, match=r"weights not loaded"):
        eager_minimum(Never(), 1, 16, 16, 2)


@pytest.mark.parametrize("alignment, min_size, dims, square", [
    (16, 32, 2, SweepSize(1, 32, 32)), (1, 17, 2, SweepSize(1, 17, 17)), (8, 20, 2, SweepSize(1, 24, 24)),
    (4, 8, 3, SweepSize(1, 8, 8, 8)), (1, 5, 3, SweepSize(1, 5, 5, 5))])
def test_sweep_runs_the_square_minimum(alignment, min_size, dims, square):
    sizes = sweep_sizes(alignment, min_size, spatial_dims=dims)
    assert sizes[-1] == square and len(set(sizes)) == len(sizes)


@pytest.mark.slow
def test_export_declares_the_minimum_eager_runs(tmp_path):
    from unetrt.exporter import ExportConfig, export
    from unetrt.runtime import load

    result = export(ExportConfig(factory=FACTORY, output_dir=str(tmp_path), engine=False))
    section = result.manifest.input
    assert (section.alignment, section.min_size) == (16, 32)
    assert any("the traced minimum 16x16 fails in eager" in n for n in result.manifest.export.notes)
    shapes = [r.input_shape for r in result.manifest.verification.sizes]
    assert shapes[-1] == [1, 1, 32, 32] and all(r.passed for r in result.manifest.verification.sizes)
    with load(str(tmp_path), backend="ort") as runner:
        c = runner.input_constraints["input"]
        assert c.min_size == 32
        assert "16 < 32" in c.problem((1, 1, 16, 32))[0]


@pytest.mark.slow
def test_monai_basic_unet_plus_plus_minimum(tmp_path):
    """The reported model: eager at 16x16 fails, 32x32 runs (no export: the probe alone)."""
    pytest.importorskip("monai")
    from tests.fixtures.thirdparty import monai_net

    model = monai_net("BasicUNetPlusPlus", spatial_dims=2, in_channels=1, out_channels=2,
                      features=[4, 4, 8, 8, 16, 4]).eval()
    size, note = eager_minimum(model, 1, 16, 16, 2)
    assert size == 32 and "1x16x16" not in note and "16x16 fails in eager" in note
