"""Hypothesis over sizes: one dynamic ONNX reproduces eager at any admissible (N, H, W)."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unetrt.exporter import ExportConfig, export
from unetrt.exporter.verify import make_session
from unetrt.models import create_model


@pytest.fixture(scope="module", params=["milesial", "resnet18-unet"])
def exported(request, tmp_path_factory):
    arch = request.param
    out = tmp_path_factory.mktemp(arch)
    torch.manual_seed(11)
    model = create_model(arch, width=4)
    for m in model.modules():  # non-trivial BN statistics so errors would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    ckpt = out / "w.pth"
    torch.save(model.state_dict(), ckpt)
    export(ExportConfig(arch=arch, model_kwargs={"width": 4}, checkpoint=str(ckpt), output_dir=str(out / "o"),
                        verify=False))
    return model, make_session(str(out / "o" / "model.onnx"))


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 3), h=st.integers(32, 90), w=st.integers(32, 90))
def test_any_size_matches_eager(exported, n, h, w):
    model, sess = exported
    x = np.random.default_rng(h * 1000 + w).standard_normal((n, 3, h, w)).astype(np.float32)
    got = sess.run(None, {"input": x})[0]
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape == (n, 2, h, w)
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())
