"""The python-backend directory that ``TritonServer`` prepares is built idempotently from the
nvidia-pytriton wheel, whatever a user did to the wheel's ``backends/python/`` by hand (issue 21):
a stub already copied there, a stale link, a read-only site-packages."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from unetrt.errors import ServeError
from unetrt.serve import server as server_mod
from unetrt.serve.deps import tritonserver_dist

STUB = "triton_python_backend_stub"
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def _wheel_like(root: Path, real: Path) -> Path:
    """A ``pytriton`` package whose ``tritonserver/`` links to the real wheel's files, except for a
    ``backends/python/`` of its own that tests can alter (its ``nvidia_pytriton.libs`` sits next to it)."""
    dist = root / "pytriton" / "tritonserver"
    (dist / "backends" / "python").mkdir(parents=True)
    for name in ("bin", "python_backend_stubs", "caches"):
        (dist / name).symlink_to(real / name)
    for source in (real / "backends" / "python").iterdir():
        if source.name != "__pycache__":
            (dist / "backends" / "python" / source.name).symlink_to(source)
    (root / "nvidia_pytriton.libs").symlink_to(real.parent.parent / "nvidia_pytriton.libs")
    return dist


@pytest.fixture
def wheel(tmp_path, monkeypatch) -> Path:
    dist = _wheel_like(tmp_path / "site", tritonserver_dist())
    monkeypatch.setattr(server_mod, "tritonserver_dist", lambda: dist)
    return dist


def _server(tmp_path) -> server_mod.TritonServer:
    (tmp_path / "repo").mkdir(exist_ok=True)
    return server_mod.TritonServer(tmp_path / "repo")


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                              os.readlink(p) if p.is_symlink() else None)
    return out


def _check_backend_dir(backends: Path, dist: Path) -> None:
    python = backends / "python"
    names = sorted(p.name for p in python.iterdir())
    assert names == sorted([STUB, "libtriton_python.so", "triton_python_backend_utils.py"]), names
    assert (python / STUB).resolve() == (dist / "python_backend_stubs" / VERSION / STUB).resolve()
    assert all(p.exists() for p in python.iterdir())  # no dangling link


def test_stub_already_in_the_wheels_backend_dir(wheel, tmp_path):
    """The documented manual setup: the stub copied into backends/python (FileExistsError before)."""
    shutil.copy2(wheel / "python_backend_stubs" / VERSION / STUB, wheel / "backends" / "python" / STUB)
    srv = _server(tmp_path)
    backends = srv._backends(tmp_path / "work")
    _check_backend_dir(backends, wheel)
    # a second preparation of the same directory is a no-op, not an error
    assert srv._backends(tmp_path / "work") == backends
    _check_backend_dir(backends, wheel)


def test_stub_of_another_python_in_the_wheels_backend_dir_is_not_used(wheel, tmp_path):
    other = next(p for p in (wheel / "python_backend_stubs").iterdir() if p.name != VERSION)
    (wheel / "backends" / "python" / STUB).symlink_to(other / STUB)
    _check_backend_dir(_server(tmp_path)._backends(tmp_path / "work"), wheel)


def test_stale_links_are_left_out(wheel, tmp_path):
    python = wheel / "backends" / "python"
    (python / STUB).symlink_to(tmp_path / "gone" / STUB)
    (python / "old_backend_utils.py").symlink_to(tmp_path / "gone.py")
    srv = _server(tmp_path)
    work = tmp_path / "work"
    (work / "backends" / "python").mkdir(parents=True)
    (work / "backends" / "python" / STUB).symlink_to(tmp_path / "also_gone")  # stale in our own directory too
    _check_backend_dir(srv._backends(work), wheel)


def test_read_only_site_packages_is_never_written(wheel, tmp_path):
    shutil.copy2(wheel / "python_backend_stubs" / VERSION / STUB, wheel / "backends" / "python" / STUB)
    site = tmp_path / "site"
    for dirpath, _, _ in os.walk(site):
        os.chmod(dirpath, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    before = _snapshot(site)
    try:
        _check_backend_dir(_server(tmp_path)._backends(tmp_path / "work"), wheel)
        assert _snapshot(site) == before
    finally:
        for dirpath, _, _ in os.walk(site):
            os.chmod(dirpath, 0o755)


def test_missing_stub_or_backend_is_one_line(wheel, tmp_path, monkeypatch):
    python = wheel / "backends" / "python"
    (python / "libtriton_python.so").unlink()
    with pytest.raises(ServeError, match=r"no python backend \(libtriton_python.so\) in .*reinstall"):
        _server(tmp_path)._backends(tmp_path / "work")
    monkeypatch.setattr(server_mod, "sys", SimpleNamespace(version_info=SimpleNamespace(major=3, minor=99)))
    with pytest.raises(ServeError, match=r"no python-backend stub for Python 3\.99 .*one of .*3\.11"):
        _server(tmp_path)._backends(tmp_path / "work")


def test_unwritable_work_dir_is_one_line(wheel, tmp_path):
    blocker = tmp_path / "work"
    blocker.write_text("a file where the directory should go")
    with pytest.raises(ServeError) as info:
        _server(tmp_path)._backends(blocker)
    assert "cannot prepare the python backend directory" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.serve
def test_server_starts_with_a_stub_in_the_wheels_backend_dir(wheel, aligned_export, tmp_path):
    """End to end: the real tritonserver serves with the hand-placed stub and a stale link present."""
    import numpy as np

    from unetrt.serve.client import TritonClient
    from unetrt.serve.repository import write_repository

    shutil.copy2(wheel / "python_backend_stubs" / VERSION / STUB, wheel / "backends" / "python" / STUB)
    (wheel / "backends" / "python" / "stale.so").symlink_to(tmp_path / "missing.so")
    write_repository(aligned_export, tmp_path / "repo", name="unet16")
    with server_mod.TritonServer(tmp_path / "repo", startup_timeout_s=180) as srv:
        with TritonClient(srv.http_url) as client:
            y = client.infer("unet16", {"input": np.zeros((1, 3, 32, 32), np.float32)}, ["logits"])["logits"]
    assert y.shape == (1, 2, 32, 32)
