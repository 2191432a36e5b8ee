"""Against ONE real tritonserver (module scope): HTTP and gRPC parity with the in-process runner,
``unet-predict --triton`` and the image ensemble against local ``unet-predict``, bad requests."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from unetrt.errors import ServeError

pytestmark = [pytest.mark.serve, pytest.mark.slow]  # each module starts a tritonserver

def read_png(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img)


SHAPES = [(1, 3, 33, 47), (2, 3, 17, 45), (2, 3, 64, 40)]


@pytest.fixture(scope="module")
def reference(demo_export):
    from unetrt.runtime import load

    with load(demo_export, backend="ort", device="cpu") as runner:
        yield runner


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(7)
    return [rng.random(s, dtype=np.float32) for s in SHAPES]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_outputs_equal_in_process_runner(server, reference, inputs, protocol):
    from unetrt.serve.client import TritonClient

    url = server.http_url if protocol == "http" else server.grpc_url
    with TritonClient(url) as client:
        for x in inputs:
            got = client.infer("unet", {"input": x}, ["logits"])["logits"]
            ref = reference.infer({"input": x})["logits"]
            assert got.shape == ref.shape == (x.shape[0], 3, *x.shape[2:])
            assert np.abs(got - ref).max() <= 1e-5


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_triton_runner_contract(server, reference, inputs, protocol):
    from unetrt.errors import InputError
    from unetrt.serve.client import TritonRunner

    url = server.http_url if protocol == "http" else server.grpc_url
    with TritonRunner(url, "unet") as runner:
        assert runner.input_metadata["input"] == ("float32", (None, 3, None, None))
        c = runner.input_constraints["input"]
        assert (c.min_size, c.alignment) == (16, 1)
        assert runner.manifest.mask_values == [0, 127, 255] and runner.manifest.output.classes == 3
        got = runner.infer({"input": inputs[1]})["logits"]
        assert np.abs(got - reference.infer({"input": inputs[1]})["logits"]).max() <= 1e-5
        with pytest.raises(InputError, match="H is 8 < 16"):
            runner.infer({"input": np.zeros((1, 3, 8, 40), np.float32)})


def test_predict_and_image_ensemble_match_local_predict(server, demo_export, tmp_path):
    from unetrt.assets import demo_samples
    from unetrt.cli.predict import predict_cmd
    from unetrt.serve.client import segment_image

    samples = [str(p) for p in demo_samples()[:2]]
    outs = {}
    for label, args in {"local": ["-m", str(demo_export)], "http": ["--triton", server.http_url],
                        "grpc": ["--triton", server.grpc_url]}.items():
        folder = tmp_path / label
        folder.mkdir()
        res = CliRunner().invoke(predict_cmd, args + [a for s in samples for a in ("-i", s)] + ["-o", f"{folder}/"])
        assert res.exit_code == 0, res.output
        outs[label] = [(folder / (p.split("/")[-1][:-4] + "_OUT.png")).read_bytes() for p in samples]
    assert outs["http"] == outs["local"] and outs["grpc"] == outs["local"]
    for sample, local in zip(samples, outs["local"]):
        for url in (server.http_url, server.grpc_url):
            assert segment_image(url, open(sample, "rb").read(), "unet_image") == local
    jpeg = tmp_path / "sample.jpg"  # JPEG bytes in, the same mask unet-predict writes for the .jpg
    from PIL import Image

    Image.open(samples[0]).convert("RGB").save(jpeg, quality=90)
    res = CliRunner().invoke(predict_cmd, ["-m", str(demo_export), "-i", str(jpeg), "-o", str(tmp_path / "j.png")])
    assert res.exit_code == 0, res.output
    assert segment_image(server.grpc_url, jpeg.read_bytes()) == (tmp_path / "j.png").read_bytes()
    values = set(np.unique(read_png(tmp_path / "local" / (samples[0].split("/")[-1][:-4] + "_OUT.png"))).tolist())
    assert len(values) >= 2 and values <= {0, 127, 255}  # a real mask, in the checkpoint's mask values


BAD = [
    ("unet", {"input": np.zeros((1, 3, 32, 32), np.float64)}, "FP64"),
    ("unet", {"input": np.zeros((1, 4, 32, 32), np.float32)}, "unexpected shape"),
    ("unet", {"input": np.zeros((1, 3, 8, 40), np.float32)}, "H is 8 < 16"),
    ("unet16", {"input": np.zeros((1, 3, 40, 48), np.float32)}, "not a multiple of 16"),
    ("unet", {"input": np.zeros((3, 32, 32), np.float32)}, "unexpected shape"),
    ("unet_image", {"IMAGE": np.frombuffer(b"\x89PNG not really", np.uint8)[None]}, "cannot decode the image"),
    ("unet_image", {"IMAGE": np.frombuffer(b"GIF89a" + bytes(40), np.uint8)[None]}, "cannot decode the image"),
    ("unet_image", {"IMAGE": np.zeros((1, 8), np.float32)}, "FP32"),
]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bad_requests_get_clean_errors_and_server_keeps_serving(server, inputs, protocol):
    from unetrt.serve.client import TritonClient

    url = server.http_url if protocol == "http" else server.grpc_url
    with TritonClient(url) as client:
        for model, feed, needle in BAD:
            with pytest.raises(ServeError) as info:
                client.infer(model, feed)
            message = str(info.value)
            assert needle in message and "\n" not in message and "Traceback" not in message, message
            ok = client.infer("unet16", {"input": np.ones((1, 3, 32, 48), np.float32)}, ["logits"])["logits"]
            assert ok.shape == (1, 2, 32, 48) and np.isfinite(ok).all()
        assert client.is_ready()


def test_metrics_endpoint_counts_requests(server):
    import urllib.request

    with urllib.request.urlopen(server.metrics_url, timeout=10) as r:
        text = r.read().decode()
    line = next(ln for ln in text.splitlines() if ln.startswith('nv_inference_request_success{model="unet"'))
    assert float(line.split()[-1]) > 0


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_examples_triton_client(server, demo_export, tmp_path, protocol):
    """examples/triton/client.py in a subprocess: the ensemble's mask equals unet-predict's file; the tensor
    mode's argmax equals the in-process runner's on the raw image."""
    import subprocess
    import sys
    from pathlib import Path

    from unetrt.assets import demo_samples
    from unetrt.cli.predict import predict_cmd

    example = Path(__file__).resolve().parents[2] / "examples" / "triton" / "client.py"
    sample = demo_samples()[0]
    url = server.http_url if protocol == "http" else server.grpc_url
    local = tmp_path / "local.png"
    res = CliRunner().invoke(predict_cmd, ["-m", str(demo_export), "-i", str(sample), "-o", str(local)])
    assert res.exit_code == 0, res.output
    for mode in ("image", "tensor"):
        out = tmp_path / f"{mode}.png"
        run = subprocess.run([sys.executable, str(example), "--url", url, "--mode", mode, "-i", str(sample),
                              "-o", str(out)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        if mode == "image":
            assert out.read_bytes() == local.read_bytes()
        else:
            classes = read_png(out)
            assert set(np.unique(classes).tolist()) <= {0, 1, 2}
            assert np.array_equal(np.asarray([0, 127, 255], np.uint8)[classes], read_png(local))


def test_loadtest_command(server):
    import json

    from unetrt.cli import main as cli

    res = CliRunner().invoke(cli, ["loadtest", server.grpc_url, "--model", "unet16", "--concurrency", "1,3",
                                   "--requests", "4", "--shape", "1x3x32x48", "--shape", "2x3x16x16", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [(r["concurrency"], r["requests"], r["errors"]) for r in rows] == [(1, 4, 0), (3, 12, 0)]
    assert all(0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] <= r["latency_ms"]["p99"] for r in rows)
    bad = CliRunner().invoke(cli, ["loadtest", server.http_url, "--model", "nope"])
    assert bad.exit_code != 0 and "Error: Triton at" in bad.output and "nope" in bad.output
    # every request refused (40 is no multiple of 16): the table, then one error line and exit 1
    res = CliRunner().invoke(cli, ["loadtest", server.http_url, "--model", "unet16", "--concurrency", "2",
                                   "--requests", "3", "--shape", "1x3x40x40"])
    assert res.exit_code == 1, res.output
    assert "Error: 6 of 6 requests failed (first: " in res.output and "not a multiple of 16" in res.output
    assert "nan" not in res.output


def test_loadtest_checks_responses(server, monkeypatch):
    """A response of the wrong shape or with NaN values counts as an error, not as a served request."""
    from unetrt.serve.client import TritonClient
    from unetrt.serve.loadtest import run_load, triton_infer

    make, close = triton_infer(server.grpc_url, "unet16")
    real = TritonClient.infer
    x = np.zeros((1, 3, 32, 32), np.float32)
    assert run_load(make, [x], concurrency=1, requests_per_worker=2, warmup=0, close=close).errors == 0
    for corrupt, needle in ((lambda y: y[:, :1], "answered logits float32 [1, 1, 32, 32]"),
                            (lambda y: np.concatenate([y, y]), "[2, 2, 32, 32]"),
                            (lambda y: np.full_like(y, np.nan), "NaN")):
        monkeypatch.setattr(TritonClient, "infer",
                            lambda self, *a, c=corrupt, **k: {n: c(v) for n, v in real(self, *a, **k).items()})
        result = run_load(make, [x], concurrency=1, requests_per_worker=2, warmup=0, close=close)
        assert result.errors == 2 and needle in result.error_samples[0], result.error_samples


def _png(size: tuple[int, int], mode: str = "1") -> np.ndarray:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return np.frombuffer(buf.getvalue(), np.uint8)[None]


# what the client sent is wrong: 400 (HTTP) / INVALID_ARGUMENT (gRPC), with the reason
CLIENT_ERRORS = [
    ("unet", "input", np.zeros((1, 3, 8, 40), np.float32), "H is 8 < 16"),
    ("unet16", "input", np.zeros((1, 3, 40, 48), np.float32), "not a multiple of 16"),
    ("unet16", "input", np.zeros((3, 3, 64, 64), np.float32), "holds 12288 pixels, more than the 8192"),
    ("unet_image", "IMAGE", np.frombuffer(b"\x89PNG not really", np.uint8)[None], "not an image format"),
    ("unet_image", "IMAGE", _png((4096, 2048)), "image 4096x2048 holds 8388608 pixels, more than the 4194304"),
]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_client_errors_are_invalid_arg(server, protocol):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException, np_to_triton_dtype

    mod = httpclient if protocol == "http" else grpcclient
    client = mod.InferenceServerClient((server.http_url if protocol == "http" else server.grpc_url).split("//")[1])
    try:
        for model, name, x, needle in CLIENT_ERRORS:
            item = mod.InferInput(name, list(x.shape), np_to_triton_dtype(x.dtype))
            item.set_data_from_numpy(x)
            with pytest.raises(InferenceServerException) as info:
                client.infer(model, [item])
            status, message = str(info.value.status()), info.value.message()
            assert status == ("400" if protocol == "http" else "StatusCode.INVALID_ARGUMENT"), (model, status, message)
            assert needle in message and "BytesIO" not in message and " at 0x" not in message, message
        ok = mod.InferInput("input", [2, 3, 64, 64], "FP32")  # exactly the limit is served
        ok.set_data_from_numpy(np.zeros((2, 3, 64, 64), np.float32))
        assert client.infer("unet16", [ok]).as_numpy("logits").shape == (2, 2, 64, 64)
    finally:
        client.close()


def test_admin_apis_are_restricted_and_shm_regions_are_the_servers(server):
    import glob
    import urllib.error
    import urllib.request

    from unetrt.serve.server import ADMIN_HEADER

    for path in ("/v2/logging", "/v2/trace/setting", "/v2/systemsharedmemory/status", "/v2/repository/index"):
        method = "POST" if path.endswith("index") else "GET"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(urllib.request.Request(server.http_url + path, method=method), timeout=10)
        assert info.value.code == 403, path
        request = urllib.request.Request(server.http_url + path, method=method,
                                         headers={ADMIN_HEADER: server.admin_key})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200, path
    with urllib.request.urlopen(f"{server.http_url}/v2/models/unet/stats", timeout=10) as r:
        assert r.status == 200  # statistics stay open
    assert server.shm_prefix.startswith("unetrt_") and glob.glob(f"/dev/shm/{server.shm_prefix}*")


def test_server_log_has_no_python_traceback(server):
    """Runs last: every output above went through DLPack (numpy 2) without the stub logging a traceback."""
    log = server.log_path.read_text(errors="replace")
    assert "Started HTTPService" in log
    assert "Traceback" not in log and "PyCapsule" not in log, log[-2000:]
