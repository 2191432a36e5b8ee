"""Output directories that never hold half-written results.

Artifacts are produced in a staging directory beside the target and moved in only when the
whole export succeeded; a failure removes the staging directory and leaves the target as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import OutputError

MANIFEST_NAME = "manifest.json"


def check_output_dir(directory: str | os.PathLike, force: bool) -> Path:
    """Validate the target before any work is done.

    Raises:
        OutputError: it is a file, it is not writable, or it is non-empty without ``force``.
    """
    target = Path(directory).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise OutputError(f"output {target} is a file", "a directory (new or empty)", "choose another -o/--output")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise OutputError(f"output directory {target} is not empty", "a new or empty directory",
                          "pass --force to replace the artifacts in it, or choose another -o/--output")
    existing = target if target.is_dir() else next((p for p in target.parents if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {target} is not writable", "a writable location",
                          "check permissions or choose another -o/--output")
    return target


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
        self.target.mkdir(parents=True, exist_ok=True)
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
