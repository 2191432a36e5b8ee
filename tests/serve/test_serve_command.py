"""``unetrt serve`` through the installed console script: a real server, bounded concurrent load of
mixed sizes, clean SIGTERM shutdown, nothing left behind; a busy port gives one clear line."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest

from tests.serve.conftest import group_gone, port_free, serve_process, unetrt_command

pytestmark = pytest.mark.serve


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    from unetrt.serve.client import TritonClient

    deadline = time.monotonic() + timeout
    with TritonClient(url) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"unetrt serve exited early: {proc.stderr.read()}")
            if client.is_ready():
                return
            time.sleep(0.3)
    raise AssertionError("unetrt serve not ready in time")


@pytest.mark.slow
def test_serve_concurrent_load_and_sigterm(aligned_export):
    from unetrt.serve.client import TritonClient
    from unetrt.serve.loadtest import run_load, triton_infer

    with serve_process(aligned_export, "--max-queue-delay-us", "2000", "--no-preprocess") as (proc, ports):
        url = f"http://127.0.0.1:{ports[0]}"
        _wait_ready(url, proc)
        rng = np.random.default_rng(1)
        inputs = [rng.random(s, dtype=np.float32) for s in [(1, 3, 32, 32), (1, 3, 48, 64), (2, 3, 16, 80),
                                                             (1, 3, 64, 48)]]
        with TritonClient(f"grpc://127.0.0.1:{ports[1]}") as client:
            single = [client.infer("unet", {"input": x}, ["logits"])["logits"] for x in inputs]
        make, close = triton_infer(url, "unet")
        result = run_load(make, inputs, concurrency=8, requests_per_worker=25, warmup=0, collect=True, close=close)
        assert result.errors == 0, result.error_samples
        assert result.requests == len(result.outputs) == 200
        for k, y in result.outputs:
            assert y.shape == single[k].shape and np.abs(y - single[k]).max() <= 1e-5
        with TritonClient(url) as client:
            assert client.is_ready()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stopped (tritonserver exit code 0)" in " ".join(err.split())
    assert group_gone(proc.pid)
    assert all(port_free(p) for p in ports)


def test_serve_busy_port_is_one_line(aligned_export):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        from unetrt.serve.server import free_port

        res = subprocess.run(unetrt_command() + ["serve", str(aligned_export), "--http-port", str(port), "--grpc-port",
                                          str(free_port()), "--metrics-port", str(free_port())],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"port {port} on 127.0.0.1 is not available" in lines[0], res.stderr
    assert "--http-port" in lines[0] and "Traceback" not in res.stderr
