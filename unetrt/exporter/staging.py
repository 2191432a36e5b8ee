"""Output directories that never hold half-written results.

Artifacts are produced in a staging directory beside the target and moved in only when the
whole export succeeded; a failure removes the staging directory and leaves the target as it was.
SIGTERM (what ``timeout``, ``docker stop`` and Kubernetes send) is handled like Ctrl-C while an
export runs (:func:`terminate_as_interrupt`), and one export at a time writes into a target
(:class:`OutputLock`, a :mod:`filelock` lock file beside it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import filelock

from ..artifacts.names import LOCK
from ..errors import OutputError
from ..fileio import default_mode

MANIFEST_NAME = "manifest.json"


def lock_path(target: Path) -> Path:
    """The lock file of an output directory: ``.<name>`` + :data:`~unetrt.artifacts.names.LOCK` beside it."""
    return target.parent / f".{target.name}{LOCK}"


class _StaleLockFile(Exception):
    """The lock was won on a file its previous holder had just unlinked: try the new file."""


class OutputLock:
    """An exclusive lock (:class:`filelock.FileLock`) on a file beside ``target`` that holds the owner's pid.

    The kernel drops the lock when its process dies, so a killed export never blocks the next. The
    file is removed on release while still locked; an export that won the lock on such an unlinked
    file notices (its inode is no longer the path's) and locks the new one instead.

    Raises:
        OutputError: another process holds the lock (its pid is in the message), or the parent is
            not writable.
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.path = lock_path(self.target)
        self._lock = filelock.FileLock(self.path, timeout=0, mode=default_mode(), thread_local=False,
                                       on_acquired=self._claim)

    def _claim(self, fd: int) -> None:
        try:
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            raise _StaleLockFile
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def __enter__(self) -> "OutputLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.path.parent}: {exc.strerror}", "a writable location",
                              "check permissions or choose another -o/--output") from exc
        for _ in range(8):
            try:
                self._lock.acquire()
                return self
            except _StaleLockFile:
                continue
            except filelock.Timeout:
                raise OutputError(f"output directory {self.target} is being written by another export "
                                  f"(pid {self._holder()})", "one export at a time per output directory",
                                  "wait for it to finish, or choose another -o/--output") from None
            except OSError as exc:
                raise OutputError(f"cannot create the lock file {self.path}: {exc.strerror}", "a writable location",
                                  "check permissions or choose another -o/--output") from exc
        raise OutputError(f"output directory {self.target} is being locked and released by other exports",
                          "one export at a time per output directory", "retry in a moment")

    def _holder(self) -> str:
        try:
            return self.path.read_text(encoding="ascii", errors="replace").strip() or "unknown"
        except OSError:
            return "unknown"

    def __exit__(self, *exc) -> None:
        if self._lock.is_locked:
            self.path.unlink(missing_ok=True)  # unlink while still locked: a waiter re-checks the inode
            self._lock.release()


class Staging:
    """Context manager: a temp directory next to ``target``; ``commit()`` moves files into it."""

    def __init__(self, target: Path):
        self.target = target
        self.path: Path | None = None

    def __enter__(self) -> "Staging":
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.staging-", dir=parent))
            os.chmod(self.path, default_mode(directory=True))  # mkdtemp's 0700 would hide it from others
        except OSError as exc:
            raise OutputError(f"cannot create files under {parent}: {exc.strerror}", "a writable location",
                              "check permissions or choose another -o/--output") from exc
        return self

    def __exit__(self, *exc) -> None:
        if self.path is not None and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self) -> list[Path]:
        """Move every staged file into the target (manifest last); remove artifacts an earlier
        manifest in the target listed that this export did not produce."""
        assert self.path is not None
        self.target.mkdir(parents=True, exist_ok=True)  # mkdir applies the umask itself
        staged = sorted(self.path.iterdir(), key=lambda p: p.name == MANIFEST_NAME)
        new_names = {p.name for p in staged}
        for stale in _previous_artifacts(self.target) - new_names:
            (self.target / stale).unlink(missing_ok=True)
        moved = []
        for p in staged:
            os.replace(p, self.target / p.name)
            moved.append(self.target / p.name)
        return moved


def _previous_artifacts(target: Path) -> set[str]:
    try:
        data = json.loads((target / MANIFEST_NAME).read_text())
        return {Path(a["path"]).name for a in data.get("artifacts", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
