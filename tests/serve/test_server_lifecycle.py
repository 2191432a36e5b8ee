"""Server lifecycle faults (issue 19.17-19.20): shared-memory regions removed after kill -9, a
non-zero tritonserver exit fails ``unetrt serve`` (drain timeout as an option), a python model
without ``model.py`` refused before start, a non-loopback host warned about, the gRPC client's
timeout, image decoding errors."""

from __future__ import annotations

import glob
import io
import os
import signal
import socket
import time

import numpy as np
import pytest
from click.testing import CliRunner

from tests.serve.conftest import group_gone, port_free, serve_process
from unetrt.errors import InputError, ServeError


def _repo(export, root):
    from unetrt.serve.repository import write_repository

    write_repository(export, root, name="unet16")
    return root


def test_python_model_without_model_py_is_refused_before_start(aligned_export, tmp_path):
    from unetrt.serve.server import TritonServer

    repo = _repo(aligned_export, tmp_path / "r")
    (repo / "unet16" / "1" / "model.py").unlink()
    began = time.monotonic()
    with pytest.raises(ServeError, match=r"python model unet16 has no .*1/model.py .*unetrt triton"):
        TritonServer(repo, startup_timeout_s=120).start()
    assert time.monotonic() - began < 5


def test_remove_shm_regions_only_takes_the_prefix(tmp_path):
    from unetrt.serve.server import remove_shm_regions

    for name in ("unetrt_1_ab_x", "unetrt_1_ab_y", "unetrt_1_cd_x", "triton_python_backend_shm_region_1"):
        (tmp_path / name).write_bytes(b"")
    assert sorted(remove_shm_regions("unetrt_1_ab_", tmp_path)) == ["unetrt_1_ab_x", "unetrt_1_ab_y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["triton_python_backend_shm_region_1", "unetrt_1_cd_x"]
    assert remove_shm_regions("", tmp_path) == []


def test_servers_get_distinct_shm_prefixes(aligned_export, tmp_path):
    from unetrt.serve.server import TritonServer

    repo = _repo(aligned_export, tmp_path / "r")
    assert TritonServer(repo).shm_prefix != TritonServer(repo).shm_prefix


def test_grpc_client_honours_timeout():
    """A listener that never answers: the call fails after timeout_s, it does not hang."""
    from unetrt.serve.client import TritonClient

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with TritonClient(f"grpc://127.0.0.1:{silent.getsockname()[1]}", timeout_s=1.0) as client:
            began = time.monotonic()
            with pytest.raises(ServeError, match=r"no answer within 1 s"):
                client.model_config("unet")
            assert time.monotonic() - began < 10
            assert client.is_ready() is False


def _png(size, mode="RGB") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def test_decode_image_refusals(monkeypatch):
    from PIL import Image

    from unetrt.serve.triton_models import decode_image

    assert decode_image(_png((20, 10)), 3).shape == (10, 20, 3)
    with pytest.raises(InputError, match=r"not an image format Pillow knows") as info:
        decode_image(b"\x89PNG not really")
    assert "BytesIO" not in str(info.value) and "0x" not in str(info.value)
    with pytest.raises(InputError, match=r"image 20x10 holds 200 pixels, more than the 199"):
        decode_image(_png((20, 10)), 3, max_pixels=199)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # Pillow's own bomb check (> 2x this)
    with pytest.raises(InputError, match=r"decompression bomb"):
        decode_image(_png((20, 10)), 3)


def test_non_loopback_host_is_warned_about(aligned_export):
    from unetrt.cli import main as cli
    from unetrt.serve.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    with socket.socket() as busy:  # no server binds 0.0.0.0 here: the port check after the warning fails
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = CliRunner().invoke(cli, ["serve", str(aligned_export), "--host", "0.0.0.0", "--http-port", str(port)])
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "warning: --host 0.0.0.0 exposes the server to the network" in text
    assert "(the admin APIs stay closed)" in text and f"port {port} on 0.0.0.0 is not available" in text


@pytest.mark.slow
@pytest.mark.serve
def test_kill_9_leaves_no_shm_regions_and_stop_reports_the_exit(aligned_export, tmp_path):
    from unetrt.serve.client import TritonClient
    from unetrt.serve.server import TritonServer

    srv = TritonServer(_repo(aligned_export, tmp_path / "r"), startup_timeout_s=180)
    srv.start()
    pgid = srv.process.pid
    try:
        with TritonClient(srv.http_url) as client:
            client.infer("unet16", {"input": np.zeros((1, 3, 32, 32), np.float32)})
        assert glob.glob(f"/dev/shm/{srv.shm_prefix}*")
        os.killpg(pgid, signal.SIGKILL)  # server and stubs: nothing of theirs cleans up
        srv.process.wait(30)
        assert glob.glob(f"/dev/shm/{srv.shm_prefix}*")  # what a crash leaves
    finally:
        code = srv.stop()
    assert code == -signal.SIGKILL
    assert not glob.glob(f"/dev/shm/{srv.shm_prefix}*")
    assert group_gone(pgid) and all(port_free(p) for p in (srv.http_port, srv.grpc_port, srv.metrics_port))


def _children(pid: int) -> list[int]:
    out = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(task) as f:
            out += [int(p) for p in f.read().split()]
    return out


@pytest.mark.slow
@pytest.mark.serve
def test_serve_fails_when_tritonserver_does_not_exit_cleanly(aligned_export):
    """A server that does not drain within --drain-timeout is killed: unetrt serve exits 1 saying so."""
    from tests.serve.test_serve_command import _wait_ready

    with serve_process(aligned_export, "--no-preprocess", "--drain-timeout", "1") as (proc, ports):
        _wait_ready(f"http://127.0.0.1:{ports[0]}", proc)
        said = []
        while not any(line.startswith("ready:") for line in said):  # unetrt serve itself says it is serving
            line = proc.stderr.readline()
            assert line, f"unetrt serve ended before saying ready: {''.join(said)}"
            said.append(line)
        triton = [p for p in _children(proc.pid) if "tritonserver" in open(f"/proc/{p}/cmdline").read()]
        assert len(triton) == 1
        os.kill(triton[0], signal.SIGSTOP)  # a hung server: it cannot drain or exit
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        err = "".join(said) + err
    assert proc.returncode == 1, err
    lines = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "tritonserver exited with code -9 on shutdown" in lines[0], err
    assert "--drain-timeout" in lines[0] and "Traceback" not in err
    assert group_gone(proc.pid)
    assert all(port_free(p) for p in ports)


@pytest.mark.slow
@pytest.mark.serve
def test_sigterm_while_the_server_starts_stops_it_and_exits_143(aligned_export):
    """SIGTERM before the server is ready (a deployment cancelled during start-up) stops tritonserver,
    leaves no process or port behind and exits 143 with one line, not a death by signal."""
    with serve_process(aligned_export, "--no-preprocess") as (proc, ports):
        first = proc.stderr.readline()
        assert first.startswith("starting tritonserver"), first
        deadline = time.monotonic() + 60
        while not any("tritonserver" in open(f"/proc/{p}/cmdline").read() for p in _children(proc.pid)):
            assert time.monotonic() < deadline and proc.poll() is None, "tritonserver never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "ready:" not in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("Error:")]) == 1, err
    assert group_gone(proc.pid)
    assert all(port_free(p) for p in ports)
