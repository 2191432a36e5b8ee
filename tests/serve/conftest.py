"""Shared fixtures of the serving tests: two small exports, their repositories and ONE real Triton
server (module scope, 127.0.0.1, free ports) that is always stopped.

- ``demo_export``: the shipped trained demo (milesial width 8, 3 classes, mask values 0/127/255),
  alignment 1 (every size from 16 admitted), with a TensorRT-RTX engine when tensorrt_rtx imports.
- ``aligned_export``: a seeded width-4 milesial exported with ``align=16`` and no engine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _serving_available() -> str | None:
    """Why the live-server tests cannot run here (``None`` when they can)."""
    from unetrt.errors import MissingDependencyError
    from unetrt.serve.deps import tritonserver_dist

    try:
        import tritonclient.http  # noqa: F401
    except ImportError:
        return "tritonclient is not installed"
    try:
        tritonserver_dist()  # the wheel's binary; its Python package is not imported
    except MissingDependencyError as exc:
        return str(exc)
    return None


_WHY = _serving_available()
if _WHY and os.environ.get("CI"):  # make test installs the extra: in CI a skip would hide a broken setup
    pytest.fail(f"serving tests cannot run in CI: {_WHY}", pytrace=False)
if _WHY:
    pytest.skip(f"needs the serve extra (pip install 'unetrt[serve]'): {_WHY}", allow_module_level=True)

from tests.helpers import trt_available  # noqa: E402

SERVER_START_S = 180
ALIGNED_MAX_PIXELS = 2 * 64 * 64  # unet16's request limit (N x H x W)


@pytest.fixture(scope="session")
def demo_export(tmp_path_factory) -> Path:
    from unetrt.assets import demo_checkpoint
    from unetrt.exporter import ExportConfig, export

    out = tmp_path_factory.mktemp("serve_demo") / "export"
    export(ExportConfig(arch="milesial", model_kwargs={"num_classes": 3, "width": 8},
                        checkpoint=str(demo_checkpoint()), output_dir=str(out), verify=False,
                        engine=True if trt_available() else False))
    return out


@pytest.fixture(scope="session")
def aligned_export(tmp_path_factory) -> Path:
    import torch

    from unetrt.exporter import ExportConfig, export
    from unetrt.models import create_model

    root = tmp_path_factory.mktemp("serve_aligned")
    torch.manual_seed(0)
    ckpt = root / "weights.pth"
    torch.save(create_model("milesial", width=4).state_dict(), ckpt)
    export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, checkpoint=str(ckpt), output_dir=str(root / "e"),
                        align=16, verify=False, engine=False))
    return root / "e"


@pytest.fixture(scope="module")
def repositories(demo_export, aligned_export, tmp_path_factory) -> list[Path]:
    """``unet`` (+ ``unet_image`` ensemble) from the demo (default pixel limit), ``unet16`` from the aligned
    export (at most ``ALIGNED_MAX_PIXELS`` pixels per request)."""
    from unetrt.serve.repository import write_repository

    root = tmp_path_factory.mktemp("serve_repos")
    write_repository(demo_export, root / "demo", name="unet", with_preprocess=True, max_queue_delay_us=500)
    write_repository(aligned_export, root / "aligned", name="unet16", max_pixels=ALIGNED_MAX_PIXELS)
    return [root / "demo", root / "aligned"]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT left by closed connections is fine
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def group_gone(pgid: int, wait_s: float = 10.0) -> bool:
    """Whether no process of the group is left (killed stubs may take a moment to be reaped)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def server(repositories):
    """One tritonserver over both repositories; stopped (and checked gone) whatever the tests do."""
    with running_server(repositories[0], extra_args=["--model-repository", str(repositories[1])]) as srv:
        yield srv


@contextlib.contextmanager
def running_server(repo, **kw):
    """A started :class:`TritonServer` over ``repo``; afterwards its process group must be gone (killed and
    failed otherwise) and its ports free, whatever the tests did."""
    from unetrt.serve.server import TritonServer

    srv = TritonServer(repo, startup_timeout_s=SERVER_START_S, **kw).start()
    pgid = srv.process.pid
    try:
        yield srv
    finally:
        srv.stop(timeout=30)
        if not group_gone(pgid):
            os.killpg(pgid, signal.SIGKILL)
            pytest.fail("tritonserver or a python-backend stub outlived stop()")
        assert all(port_free(p) for p in (srv.http_port, srv.grpc_port, srv.metrics_port))


def unetrt_command() -> list[str]:
    """The installed ``unetrt`` console script (or the CLI through this Python)."""
    exe = Path(sys.executable).with_name("unetrt")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from unetrt.cli import main; main()"]


def _tritonservers_on(http_port: int) -> list[int]:
    """Pids of tritonserver processes listening (by their command line) on ``http_port``, orphans included."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"tritonserver") and b"--http-port" in argv \
                and argv[argv.index(b"--http-port") + 1] == str(http_port).encode():
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def serve_process(export, *args: str):
    """``unetrt serve EXPORT ARGS`` on three free ports, in its own session: yields ``(process, ports)``.

    Afterwards nothing it started is left: a command still running is killed with its group, and a
    tritonserver it started (its own session, so not in that group) too; a tritonserver that outlived a
    passing test fails it. Tests still assert the group is gone and the ports are free themselves.
    """
    from unetrt.serve.server import free_port

    ports = [free_port() for _ in range(3)]
    cmd = unetrt_command() + ["serve", str(export), "--http-port", str(ports[0]), "--grpc-port", str(ports[1]),
                              "--metrics-port", str(ports[2]), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield proc, ports
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        left = _tritonservers_on(ports[0])
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    assert not left, f"tritonserver {left} outlived unetrt serve"
