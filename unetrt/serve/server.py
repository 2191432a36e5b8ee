"""Start and stop the real ``tritonserver`` binary that the ``nvidia-pytriton`` wheel ships.

The server runs a model repository with the wheel's python backend; its stub embeds the
Python of the environment that starts it (``libpython`` of this interpreter is put first on
``LD_LIBRARY_PATH``, this environment's ``bin`` first on ``PATH``), so the python models import
this environment's unetrt, numpy and ONNX Runtime. Every endpoint binds to ``host``
(``127.0.0.1`` by default, never 0.0.0.0 unless asked), on free ports unless given.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from ..errors import ServeError
from .deps import tritonserver_dist


_STUB = "triton_python_backend_stub"
#: Triton APIs closed by default (``--http-restricted-api`` / ``--grpc-restricted-protocol``).
ADMIN_APIS = ("shared-memory", "model-repository", "trace", "logging")
ADMIN_HEADER = "unetrt-admin-key"



def _link(path: Path, target: Path) -> None:
    """``path`` -> ``target``, replacing whatever link or file ``path`` was (idempotent)."""
    if path.is_symlink() or path.is_file():
        if path.is_symlink() and path.resolve() == target.resolve():
            return
        path.unlink()
    path.symlink_to(target)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): only this machine can connect."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port(host: str, port: int, flag: str) -> int:
    """Return ``port`` if it can be bound on ``host``, else raise one clear :class:`ServeError`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            s.bind((host, int(port)))
        except OSError as exc:
            raise ServeError(f"port {port} on {host} is not available ({exc.strerror})", "a free port",
                             f"pass another {flag}, or stop the process listening on it") from None
    return int(port)


class TritonServer:
    """A ``tritonserver`` process over a model repository (a context manager).

    Args:
        repository: The model repository directory.
        host: Address every endpoint binds to.
        http_port, grpc_port, metrics_port: Ports (``None``: a free one each).
        exit_timeout_s: Seconds the server may take to finish in-flight requests on shutdown.
        startup_timeout_s: Seconds to wait for readiness.
        log_path: Server log file (default: a temporary file, removed on ``stop``).
        extra_args: More ``tritonserver`` arguments.
        restrict_admin_apis: Close the shared-memory, model-repository, trace and logging APIs (HTTP and
            gRPC) to every request without the header ``ADMIN_HEADER: <admin_key>`` (a random key, known
            to this object only); ``False`` leaves them open as Triton does.

    The python backend's shared-memory regions get a prefix unique to this server
    (``shm_prefix``); ``stop`` removes every ``/dev/shm`` region left with it (after a crash,
    ``kill -9`` or a start-up timeout).
    """

    def __init__(self, repository: str | os.PathLike, *, host: str = "127.0.0.1", http_port: int | None = None,
                 grpc_port: int | None = None, metrics_port: int | None = None, exit_timeout_s: int = 5,
                 startup_timeout_s: float = 120.0, log_path: str | os.PathLike | None = None,
                 extra_args: list[str] | None = None, restrict_admin_apis: bool = True):
        self.repository = Path(repository).resolve()
        if not self.repository.is_dir():
            raise ServeError(f"model repository {self.repository} does not exist", "a directory written by "
                             "`unetrt triton`", "run unetrt triton EXPORT_DIR -o REPO first")
        self.host = host
        given = {"--http-port": http_port, "--grpc-port": grpc_port, "--metrics-port": metrics_port}
        ports = [check_port(host, p, flag) if p else free_port(host) for flag, p in given.items()]
        if len(set(ports)) != 3:
            raise ServeError(f"ports {ports} are not distinct", "three different ports", "fix the port options")
        self.http_port, self.grpc_port, self.metrics_port = ports
        self.exit_timeout_s, self.startup_timeout_s = int(exit_timeout_s), float(startup_timeout_s)
        self.extra_args = list(extra_args or [])
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path else None
        self.last_errors = ""  # the log's last error lines, kept by stop()
        self.restrict_admin_apis = bool(restrict_admin_apis)
        self.admin_key = secrets.token_hex(16)
        self.shm_prefix = f"unetrt_{os.getpid()}_{secrets.token_hex(4)}_"
        self.process: subprocess.Popen | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None

    # urls ----------------------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self.host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    # lifecycle -----------------------------------------------------------------------------
    def _backends(self, root: Path) -> Path:
        """A backend directory of our own under ``root``: links to the wheel's python backend files and
        to the stub of this Python version.

        The wheel is only read: a stub already placed in its ``backends/python/`` (the documented manual
        setup), stale links there, or a read-only site-packages change nothing.
        """
        dist = tritonserver_dist()
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stubs = dist / "python_backend_stubs"
        stub = stubs / version / _STUB
        if not stub.is_file():
            found = sorted(p.name for p in stubs.iterdir()) if stubs.is_dir() else []
            raise ServeError(f"nvidia-pytriton ships no python-backend stub for Python {version} in {stubs}",
                             f"one of {', '.join(found) or '(none)'}",
                             "run the server from a supported Python version or reinstall nvidia-pytriton")
        source_dir = dist / "backends" / "python"
        if not (source_dir / "libtriton_python.so").is_file():
            raise ServeError(f"no python backend (libtriton_python.so) in {source_dir}",
                             "nvidia-pytriton's wheel layout", "reinstall: pip install 'unetrt[serve]'")
        python = root / "backends" / "python"
        try:
            python.mkdir(parents=True, exist_ok=True)
            for source in source_dir.iterdir():
                # our stub replaces any the user copied there; dangling links and caches are left out
                if source.name in (_STUB, "__pycache__") or not source.exists():
                    continue
                _link(python / source.name, source)
            _link(python / _STUB, stub)
        except OSError as exc:
            raise ServeError(f"cannot prepare the python backend directory {python}: {exc.strerror or exc}",
                             "a writable temporary directory", "point TMPDIR at a writable directory") from None
        return root / "backends"

    def _env(self, dist: Path) -> dict[str, str]:
        env = dict(os.environ)
        libs = [str(dist.parent.parent / "nvidia_pytriton.libs")]
        if sysconfig.get_config_var("Py_ENABLE_SHARED") and sysconfig.get_config_var("LIBDIR"):
            libs.insert(0, sysconfig.get_config_var("LIBDIR"))
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [p for p in [env.get("LD_LIBRARY_PATH")] if p])
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    def start(self) -> "TritonServer":
        """Start the server and wait until it is ready.

        Raises:
            ServeError: The server exits during startup (the log's error lines are quoted) or is not
                ready within ``startup_timeout_s``.
        """
        if self.process is not None:
            return self
        dist = tritonserver_dist()
        check_python_models(self.repository, *_flag_values(self.extra_args, "--model-repository"))
        self._workdir = tempfile.TemporaryDirectory(prefix="unetrt-triton-")
        root = Path(self._workdir.name)
        backends = self._backends(root)
        if self.log_path is None:
            self.log_path = root / "tritonserver.log"
        cmd = [str(dist / "bin" / "tritonserver"), "--model-repository", str(self.repository),
               "--backend-directory", str(backends), "--disable-auto-complete-config",
               "--http-address", self.host, "--grpc-address", self.host, "--metrics-address", self.host,
               "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
               "--metrics-port", str(self.metrics_port), "--exit-timeout-secs", str(self.exit_timeout_s),
               "--backend-config", f"python,shm-region-prefix-name={self.shm_prefix}"]
        if self.restrict_admin_apis:
            rule = f"{','.join(ADMIN_APIS)}:{ADMIN_HEADER}={self.admin_key}"
            cmd += [f"--http-restricted-api={rule}", f"--grpc-restricted-protocol={rule}"]
        cmd += self.extra_args
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            env=self._env(dist), start_new_session=True)
        try:
            self.wait_ready(self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def is_ready(self) -> bool:
        """Whether ``/v2/health/ready`` answers 200."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _started(self) -> bool:
        """Whether this process's log says its own HTTP and gRPC endpoints are listening (so a
        readiness answer cannot come from another server on a port taken meanwhile)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return False
        return (f"Started HTTPService at {self.host}:{self.http_port}" in text
                and f"Started GRPCInferenceService at {self.host}:{self.grpc_port}" in text)

    def wait_ready(self, timeout: float) -> None:
        """Poll readiness until ``timeout`` seconds pass or the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeError(f"tritonserver exited with code {self.process.returncode} during startup: "
                                 f"{self.log_errors()}", "a server that loads the repository",
                                 "fix what the quoted server log lines say")
            if self._started() and self.is_ready():
                return
            time.sleep(0.2)
        raise ServeError(f"tritonserver not ready after {timeout:.0f} s: {self.log_errors()}",
                         "all models loaded", "raise the startup timeout or fix what the quoted log lines say")

    def log_errors(self, limit: int = 2) -> str:
        """The server log's last error lines (CPU-only CUDA/NVML/DCGM noise left out), as one line."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except (OSError, AttributeError):
            return "(no log)"
        noise = ("CudaDriverHelper", "NVML", "DCGM", "CUDA driver version is insufficient")
        errors = [ln for ln in lines if (ln.startswith("E") or "error" in ln.lower()) and not any(n in ln for n in noise)]
        return " / ".join(" ".join(e.split())[:300] for e in (errors or lines)[-limit:]) or "(empty log)"

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, wait for a clean exit (SIGKILL to its process group after ``timeout``), clean up.

        Returns:
            The server's exit code (``None`` if it was not started).
        """
        code = None
        if self.process is not None:
            timeout = self.exit_timeout_s + 5 if timeout is None else timeout
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            _kill_group(self.process.pid)
            code = self.process.returncode
            self.last_errors = self.log_errors()
            self.process = None
        remove_shm_regions(self.shm_prefix)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        return code

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> int:
        """Block until SIGINT/SIGTERM (then stop cleanly, exit code 0) or until the server dies.
        ``on_ready`` runs once those signals stop the server cleanly (e.g. to say it is serving).

        Raises:
            ServeError: The server exited on its own.
        """
        stop = threading.Event()
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if on_ready is not None:
                on_ready()
            while not stop.is_set():
                if self.process is None or self.process.poll() is not None:
                    code = self.process.returncode if self.process else None
                    raise ServeError(f"tritonserver exited with code {code}: {self.log_errors()}",
                                     "a running server", "fix what the quoted server log lines say")
                stop.wait(0.5)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return self.stop() or 0

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def remove_shm_regions(prefix: str, shm_dir: str | os.PathLike = "/dev/shm") -> list[str]:
    """Remove the shared-memory regions whose names start with ``prefix``; returns their names."""
    removed = []
    for path in Path(shm_dir).glob(f"{prefix}*") if prefix and Path(shm_dir).is_dir() else ():
        try:
            path.unlink()
            removed.append(path.name)
        except FileNotFoundError:
            pass
    return removed


def _flag_values(args: list[str], flag: str) -> list[str]:
    """The values of ``flag`` in a ``tritonserver`` argument list (``--flag V`` and ``--flag=V``)."""
    out = []
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            out.append(args[i + 1])
        elif arg.startswith(flag + "="):
            out.append(arg.split("=", 1)[1])
    return out


def check_python_models(*repositories: str | os.PathLike) -> None:
    """Refuse a python-backend model whose version directories lack ``model.py`` before starting the
    server (Triton would wait for it until the start-up timeout).

    Raises:
        ServeError: Naming the first model and version directory without its ``model.py``.
    """
    for repo in map(Path, repositories):
        for config in sorted(repo.glob("*/config.pbtxt")):
            text = config.read_text(errors="replace")
            if not any(ln.split(":", 1)[-1].strip().strip('"') == "python"
                       for ln in text.splitlines() if ln.strip().startswith("backend")):
                continue
            versions = [d for d in config.parent.iterdir() if d.is_dir() and d.name.isdigit()]
            for version in versions or [config.parent / "1"]:
                if not (version / "model.py").is_file():
                    raise ServeError(f"python model {config.parent.name} has no {version / 'model.py'}",
                                     "a model.py in each version directory of a python-backend model",
                                     "rewrite the repository: unetrt triton EXPORT_DIR -o REPO --force")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pgid: int, grace_s: float = 5.0) -> None:
    """Wait up to ``grace_s`` for what is left of the server's process group (python-backend stubs
    exit after the server), then SIGKILL it and wait until it is gone (reaped)."""
    deadline = time.monotonic() + grace_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not _group_alive(pgid):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
