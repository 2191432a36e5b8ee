"""The whole nnU-Net pipeline served by the real tritonserver (nvidia-pytriton's binary, 127.0.0.1, free
ports, always stopped): ``unetrt triton`` on an ``unet-export --nnunet`` directory, a volume + spacing in
over HTTP and gRPC, the label map out, equal to the in-process predictor and to nnUNetPredictor."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

pytestmark = [pytest.mark.serve, pytest.mark.slow]

from tests.serve.conftest import running_server  # noqa: E402  (skips without the serve extra)


@pytest.fixture(scope="module")
def repo(built, tmp_path_factory):
    from unetrt.cli.triton import triton_cmd

    out = tmp_path_factory.mktemp("nnunet_triton") / "repo"
    res = CliRunner().invoke(triton_cmd, [str(built["plain3d"].export), "-o", str(out), "--name", "nnunet"])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def server(repo):
    with running_server(repo) as srv:
        yield srv


def test_repository_layout(repo, built):
    from unetrt.serve.configs import read_config

    config = read_config(repo / "nnunet")
    assert config.backend == "python" and config.max_batch_size == 0
    assert [(i.name, list(i.dims)) for i in config.input] == [("IMAGE", [1, -1, -1, -1]), ("SPACING", [3])]
    assert [(o.name, list(o.dims)) for o in config.output] == [("SEGMENTATION", [-1, -1, -1])]
    version = repo / "nnunet" / "1"
    assert "NnunetModel as TritonPythonModel" in (version / "model.py").read_text()
    for fold in (0, 1):
        assert (version / f"fold_{fold}" / "model.onnx").is_file()
        assert (version / f"fold_{fold}" / "manifest.json").is_file()


def test_refuses_other_platforms(built, tmp_path):
    from unetrt.cli.triton import triton_cmd

    res = CliRunner().invoke(triton_cmd, [str(built["plain3d"].export), "-o", str(tmp_path / "r"),
                                          "--platform", "onnx"])
    assert res.exit_code != 0 and "for an nnU-Net export" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_pipeline_matches_predictors(server, built, protocol):
    from unetrt.nnunet.predict import NnunetPredictor
    from unetrt.serve.client import TritonClient

    b = built["plain3d"]
    url = server.http_url if protocol == "http" else server.grpc_url
    with TritonClient(url) as client:
        got = client.infer("nnunet", {"IMAGE": b.image, "SPACING": np.asarray(b.spacing, np.float32)},
                           ["SEGMENTATION"])["SEGMENTATION"]
    with NnunetPredictor.from_export(b.export, "ort", "cpu") as local:
        expected, _ = local.predict(b.image, b.spacing)
    assert got.dtype == np.uint8 and got.shape == b.image.shape[1:]
    assert np.array_equal(got, expected)
    assert float((got == b.ref_seg).mean()) >= 0.999


def test_bad_spacing_is_one_error(server, built):
    from unetrt.errors import ServeError
    from unetrt.serve.client import TritonClient

    b = built["plain3d"]
    with TritonClient(server.http_url) as client:
        with pytest.raises(ServeError, match=r"the case has spacing \[1.0, 0.0, 1.0\]"):
            client.infer("nnunet", {"IMAGE": b.image, "SPACING": np.asarray([1, 0, 1], np.float32)})
