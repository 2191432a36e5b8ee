"""Tiled inference equals a single pass where both fit.

Bars, and why:
* overlap-tile (valid convolutions): every output pixel has its full context in every tile, so the
  stitched result equals one pass over the same mirror-padded canvas; only float summation order
  differs between tile and canvas convolutions (measured 6e-8), hence atol 1e-6.
* sliding window, receptive field inside the trimmed overlap (two 3x3 convs: radius 2 < trim 4):
  pixels with tile-edge effects get weight 0, so it is exact up to summation order: atol 1e-5.
* sliding window on milesial: a UNet's receptive field exceeds any practical overlap, so seams
  cannot be exact. The width-4 seeded model measures ~5e-6 with linear blending (plain averaging:
  8e-3); the bar max abs <= 1e-3 * max|ref| with >= 99.9 % argmax agreement separates proper blending
  from seam errors or misplaced tiles (which give errors of the order of the logits).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unetrt.errors import InputError
from unetrt.models import create_model
from unetrt.runtime import TorchRunner
from unetrt.runtime.tiling import blend_weights, overlap_tile, plan_overlap_tile, sliding_window


class SmallConvNet(nn.Module):
    """Two padded 3x3 convolutions: receptive-field radius 2, no pooling."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


@pytest.fixture(scope="module")
def paper_runner():
    torch.manual_seed(0)
    with TorchRunner(create_model("paper", width=4)) as runner:
        yield runner


@pytest.fixture(scope="module")
def small_runner():
    torch.manual_seed(0)
    with TorchRunner(SmallConvNet()) as runner:
        yield runner


@pytest.fixture(scope="module")
def milesial_runner():
    torch.manual_seed(0)
    with TorchRunner(create_model("milesial", width=4)) as runner:
        yield runner


def test_plan_overlap_tile_covers_the_image():
    plan = plan_overlap_tile((60, 110), 236, 52, period=16)  # paper: 236 -> 52; step 48
    top, bottom, left, right = plan.pad
    assert (top, left) == (92, 92) and plan.starts_y == [0, 48] and plan.starts_x == [0, 48, 96]
    assert plan.starts_y[-1] + 52 >= 60 and plan.starts_x[-1] + 52 >= 110
    assert top + 60 + bottom == plan.starts_y[-1] + 236 and left + 110 + right == plan.starts_x[-1] + 236
    with pytest.raises(InputError, match="does not shrink"):
        plan_overlap_tile((60, 60), 64, 64)
    with pytest.raises(InputError, match="fewer than the period"):
        plan_overlap_tile((60, 60), 200, 10, period=16)


def test_overlap_tile_equals_one_pass(paper_runner):
    x = np.random.default_rng(0).random((1, 1, 60, 110), dtype=np.float32)
    calls = []
    got = overlap_tile(paper_runner, x, 236, progress=lambda done, total: calls.append((done, total)))
    assert got.shape == (1, 2, 60, 110)
    assert calls[-1] == (6, 6)
    plan = plan_overlap_tile((60, 110), 236, 52)
    top, bottom, left, right = plan.pad
    canvas = np.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right)], mode="reflect")
    ref = paper_runner.infer({"input": canvas})["logits"][:, :, :60, :110]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_overlap_tile_refuses_same_size_model(small_runner):
    with pytest.raises(InputError, match="sliding_window"):
        overlap_tile(small_runner, np.zeros((1, 3, 40, 40), np.float32), 32)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_sliding_window_exact_when_receptive_field_fits(small_runner, batch_size):
    x = np.random.default_rng(1).random((2, 3, 70, 90), dtype=np.float32)
    ref = small_runner.infer({"input": x})["logits"]
    got = sliding_window(small_runner, x, 32, overlap=16, trim=4, batch_size=batch_size)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


def test_sliding_window_single_tile_is_the_plain_run(small_runner):
    x = np.random.default_rng(2).random((1, 3, 40, 50), dtype=np.float32)
    np.testing.assert_array_equal(sliding_window(small_runner, x, 64), small_runner.infer({"input": x})["logits"])


def test_sliding_window_milesial_seams(milesial_runner):
    x = np.random.default_rng(3).random((1, 3, 96, 96), dtype=np.float32)
    ref = milesial_runner.infer({"input": x})["logits"]
    calls = []
    got = sliding_window(milesial_runner, x, 48, overlap=16, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (9, 9)
    assert np.abs(got - ref).max() <= 1e-3 * np.abs(ref).max()
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.999


def test_sliding_window_refuses_valid_model(paper_runner):
    with pytest.raises(InputError, match="overlap_tile"):
        sliding_window(paper_runner, np.zeros((1, 1, 200, 400), np.float32), 200, overlap=16)


def test_linear_weights_sum_to_one_over_an_overlap():
    left = blend_weights(32, 16, trim=4, start_edge=True)
    right = blend_weights(32, 16, trim=4, end_edge=True)
    np.testing.assert_allclose(left[16:] + right[:16], 1.0)
    assert np.all(right[:4] == 0) and np.all(left[-4:] == 0) and left[0] == 1 and right[-1] == 1
    assert np.all(blend_weights(32, 16, blend="gaussian") > 0)
    with pytest.raises(InputError):
        blend_weights(32, 16, blend="cosine")
    with pytest.raises(InputError):
        blend_weights(32, 16, trim=8)
