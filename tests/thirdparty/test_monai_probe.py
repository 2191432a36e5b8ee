"""The eager size probe over MONAI's UNet family (2-D and 3-D, small channels): the alignment it
declares is the smallest at which the model runs, and the smallest size is the true minimum."""

import pytest
import torch

from tests.fixtures.thirdparty import AlwaysFails, FixedOutput, Plain3d, monai_net
from unetrt.errors import ExportError
from unetrt.exporter.probe import probe

UNET = {"in_channels": 1, "out_channels": 2, "channels": [4, 8, 16, 16], "strides": [2, 2, 2]}
CASES = [
    ("UNet", {"spatial_dims": 2, **UNET, "norm": "batch"}, 2, 8),
    ("AttentionUnet", {"spatial_dims": 2, **UNET}, 2, 8),
    ("DynUNet", {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3, 3, 3],
                 "strides": [1, 2, 2, 2], "upsample_kernel_size": [2, 2, 2], "filters": [4, 8, 8, 16]}, 2, 8),
    ("UNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 8], "strides": [2, 2],
              "norm": "batch"}, 3, 4),
    ("DynUNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3, 3],
                 "strides": [1, 2, 2], "upsample_kernel_size": [2, 2], "filters": [4, 8, 8]}, 3, 4),
]


def _runs(model, dims, size):
    try:
        with torch.no_grad():
            model(torch.randn(1, 1, *size))
        return True
    except Exception:  # the model's own size error
        return False


@pytest.mark.parametrize("net,kwargs,dims,expected", CASES, ids=[f"{c[0]}-{c[2]}d" for c in CASES])
def test_probe_declares_the_smallest_alignment_that_works(net, kwargs, dims, expected):
    model = monai_net(net, **kwargs)
    found = probe(model, 1, dims)
    assert found.probed and found.alignment == expected and found.geometry == "same"
    assert "eager probe: the model fails at" in found.notes[0]
    a, m = found.alignment, found.min_size
    # it runs at the declared minimum and at non-cubic multiples of the alignment ...
    assert _runs(model, dims, (m,) * dims)
    assert _runs(model, dims, tuple(m + a * (i + 1) for i in range(dims)))
    # ... but half the alignment admits a size it fails at, and a smaller minimum fails
    assert not _runs(model, dims, (m + a // 2,) * dims)
    if m > a:
        assert not _runs(model, dims, (m - a,) * dims)
    assert found.runs <= 16


def test_padding_models_run_at_the_odd_sample_and_are_left_to_the_guards():
    model = monai_net("BasicUNet", spatial_dims=2, in_channels=1, out_channels=2, features=[4, 4, 8, 8, 16, 4])
    found = probe(model, 1, 2)
    assert not found.probed and found.alignment == 1 and found.runs == 2


def test_user_3d_model_gets_alignment_2():
    found = probe(Plain3d(), 1, 3)
    assert (found.alignment, found.min_size, found.probed) == (2, 2, True)


def test_model_failing_everywhere_reports_its_own_error_at_the_smallest_probe():
    with pytest.raises(ExportError) as err:
        probe(AlwaysFails(), 3, 2)
    msg = str(err.value)
    assert msg.startswith("eager probe failed at every probed size (smallest: input 1x3x32x34): "
                          "RuntimeError: weights not loaded for input (1, 3, 32, 34) | ")
    assert "\n" not in msg


def test_output_that_does_not_follow_the_input_is_refused_with_its_geometry():
    with pytest.raises(ExportError) as err:
        probe(FixedOutput(), 3, 2)
    msg = str(err.value)
    assert "output size does not follow the input: 67x77 -> 48x48 and 77x67 -> 48x48" in msg
    assert "--static" in msg
