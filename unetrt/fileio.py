"""File helpers shared by every layer: content hashes, atomic writes and the check of an output directory.

An artifact is either complete or absent: writes go to a temporary file in the target's
directory and are moved into place with ``os.replace`` only once fully written. The temporary
file gets the mode a plain ``open()`` would have given (``0o666`` less the umask), not
``mkstemp``'s private ``0o600``, so another user or container can read what was exported.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

#: Image file types read by calibration, prediction and benchmarking (Pillow opens them all).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: swap and restore (not thread-safe, but only on exotic systems)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """Permission bits a new file (``0o666``) or directory (``0o777``) gets under the current umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


_SPECIAL = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
            (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def special_file_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists and is not a regular file (``"a character device"``, ``"a FIFO"``, ...;
    symlinks followed), else ``None``."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    return next((what for test, what in _SPECIAL if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def require_regular_target(path: str | os.PathLike) -> None:
    """Refuse to replace anything but a regular file (a device node, FIFO, socket or directory).

    Raises:
        OutputError: ``path`` exists and is not a regular file.
    """
    kind = special_file_kind(path)
    if kind is not None:
        from .errors import OutputError

        raise OutputError(f"output {path} is {kind}", "a regular file path (new or an existing file)",
                          "choose another output path")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on any error
    (KeyboardInterrupt included) it is removed and ``path`` is left as it was.

    Raises:
        OutputError: ``path`` exists and is not a regular file (a device such as ``/dev/full``, a FIFO, a
            socket, a directory): it is never replaced.
    """
    target = Path(path).expanduser()
    require_regular_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, default_mode())
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        require_regular_target(target)  # appeared while writing
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data) -> Path:
    """Write bytes (or any buffer) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


def check_output_dir(directory: str | os.PathLike, force: bool, *, what: str = "output directory",
                     flag: str = "-o/--output") -> Path:
    """Validate an output directory before any work is done; the absolute path.

    Raises:
        OutputError: The file system rejects the path, it is a file, it is not writable, or it is
            non-empty without ``force`` (``what`` and ``flag`` word the message).
    """
    from .errors import OutputError

    target = Path(directory).expanduser().resolve()
    try:
        target.exists()
    except OSError as exc:  # e.g. a name over 255 characters
        raise OutputError(f"{what} {str(target)[:80]}… cannot be used: {exc.strerror or exc}",
                          "a path the file system accepts (each name at most 255 characters)",
                          f"choose a shorter {flag}") from None
    if target.exists() and not target.is_dir():
        raise OutputError(f"{what} {target} is a file", "a directory (new or empty)", f"choose another {flag}")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise OutputError(f"{what} {target} is not empty", "a new or empty directory",
                          f"pass --force to replace what is in it, or choose another {flag}")
    existing = target if target.is_dir() else next((p for p in target.parents if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {target} is not writable", "a writable location",
                          f"check permissions or choose another {flag}")
    return target
