"""Which images a run reads and where their masks go: inputs, output paths and the checks made before
any image is read.

Inputs are files, folders (optionally recursive), glob patterns (``data/**/*.png``) and ``@list.txt``
files (one path per line; blank lines and ``#`` comments skipped; relative lines are relative to the list's
folder). Outputs follow milesial's naming (``<name>_OUT.png`` beside the input) unless told otherwise; one
output folder mirrors the sub-folders of a recursive input folder, so equal names never collide.

Before anything runs, :func:`check_outputs` refuses outputs that would destroy data: an input image or
the model itself (also through symlinks and relative paths), anything that is not a regular file
(``/dev/full``, a FIFO, a socket, a directory), and existing masks without ``force``.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import InputError, OutputError
from ..fileio import IMAGE_SUFFIXES as FILE_IMAGE_SUFFIXES
from ..fileio import special_file_kind

__all__ = ["IMAGE_SUFFIXES", "MASK_FORMATS", "Source", "expand_inputs", "output_paths", "check_outputs",
           "mask_format"]

IMAGE_SUFFIXES = (*FILE_IMAGE_SUFFIXES, ".gif")
#: Mask file formats by suffix: lossless formats that keep every class value (JPEG would not).
MASK_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
_OWN_OUTPUTS = ("_OUT", "_OVERLAY", "_VIZ")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Source:
    """One input image: its path, whether it came from a folder/glob/list (unreadable ones are then
    skipped, not fatal) and its path relative to that folder (mirrored under an output folder)."""

    path: Path
    listed: bool = False
    relative: Path | None = None


def _probe(path: Path, what: str) -> tuple[bool, bool]:
    """``(is_dir, is_file)`` of ``path``; an OS error (a name over 255 characters, ...) becomes one line."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False, False
    except OSError as exc:
        raise InputError(f"cannot use {what} {_short(path)}: {exc.strerror or exc}",
                         "a path the file system accepts (each name at most 255 characters)",
                         "shorten or fix the path") from None
    import stat

    return stat.S_ISDIR(st.st_mode), stat.S_ISREG(st.st_mode)


def _short(path: Path | str, limit: int = 80) -> str:
    text = str(path)
    return text if len(text) <= limit else f"{text[:40]}...{text[-30:]} ({len(text)} characters)"


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith(_OWN_OUTPUTS) and not p.name.startswith(".")


def _folder(folder: Path, recursive: bool) -> list[Source]:
    walk = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in walk if _is_image(p) and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1]))
    return [Source(p, True, p.relative_to(folder)) for p in files]


def _list_file(spec: str) -> list[str]:
    path = Path(spec[1:])
    is_dir, is_file = _probe(path, "list file")
    if not is_file:
        raise InputError(f"list file {path} does not exist", "@FILE with one image path per line", "check the path")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln if os.path.isabs(ln) else str(path.parent / ln) for ln in lines if ln and not ln.startswith("#")]


def expand_inputs(items: Iterable[str | os.PathLike], *, recursive: bool = False,
                  warn: Callable[[str], None] | None = None) -> list[Source]:
    """Files as given; folders expanded to their images (sorted; ``recursive`` walks sub-folders), glob
    patterns (``**`` crosses folders) and ``@list.txt`` files to what they name.

    Raises:
        InputError: A file that does not exist, a pattern or list that matches nothing, or no image at all.
    """
    out: list[Source] = []
    for item in items:
        text = os.fspath(item)
        if text.startswith("@") and len(text) > 1:
            listed = [Path(p) for p in _list_file(text)]
            out.extend(Source(p, True, None) for p in listed)
            continue
        p = Path(text)
        is_dir, is_file = _probe(p, "input")
        if is_dir:
            found = _folder(p, recursive)
            if not found and warn is not None:
                warn(f"warning: no images in folder {p}" + ("" if recursive else " (--recursive reads sub-folders)"))
            out.extend(found)
        elif is_file:
            out.append(Source(p))
        elif _GLOB_CHARS & set(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            matches = [m for m in matches if m.is_file() and _is_image(m)]
            if not matches:
                raise InputError(f"pattern {text} matches no image", f"files ending in {', '.join(IMAGE_SUFFIXES)}",
                                 "check the pattern (quote it so the shell leaves ** to unet-predict)")
            out.extend(Source(m, True, None) for m in matches)
        else:
            raise InputError(f"input {_short(text)} does not exist", "image files, folders, globs or @list.txt",
                             "check the path")
    if not out:
        raise InputError("no input images", "at least one image file or a folder with images", "pass -i PATH")
    return out


def is_folder_target(output: str) -> bool:
    """``-o`` names a folder: it ends with ``/`` or is an existing directory."""
    return output.endswith(("/", os.sep)) or _probe(Path(output), "output")[0]


def _mask_name(src: Source) -> Path:
    rel = src.relative if src.relative is not None else Path(src.path.name)
    return rel.with_name(rel.stem + "_OUT.png")


def output_paths(sources: Sequence[Source], outputs: Sequence[str]) -> list[Path]:
    """milesial's naming (``<name>_OUT.png`` beside the input) unless ``outputs`` says otherwise.

    One output that ends with ``/`` or is an existing folder holds every ``<name>_OUT.png`` (sub-folders of a
    recursive input folder mirrored); otherwise one output per input (each may itself be a folder).

    Raises:
        InputError: The number of outputs does not fit, or two inputs would write one file.
    """
    if not outputs:
        targets = [s.path.with_name(s.path.stem + "_OUT.png") for s in sources]
    elif len(outputs) == 1 and is_folder_target(outputs[0]):
        targets = [Path(outputs[0]) / _mask_name(s) for s in sources]
    elif len(outputs) == len(sources):
        targets = [Path(o) / (s.path.stem + "_OUT.png") if is_folder_target(o) else Path(o)
                   for o, s in zip(outputs, sources)]
    else:
        raise InputError(f"{len(outputs)} output path(s) for {len(sources)} input image(s)",
                         "one -o per input image, or one folder (ending in /)", "fix -o")
    seen: dict[str, Path] = {}
    for target, src in zip(targets, sources):
        key = os.path.realpath(target)
        if key in seen:
            raise InputError(f"{seen[key]} and {src.path} would both be written to {target}",
                             "one output file per input", "pass one -o per input")
        seen[key] = src.path
    return targets


def mask_format(path: Path) -> str:
    """Pillow format name for a mask path, from its suffix.

    Raises:
        OutputError: A lossy (JPEG, WebP) or unknown suffix: class values would not survive.
    """
    fmt = MASK_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"mask {_short(path)}: {path.suffix or 'no suffix'} is not a lossless mask format",
                          f"a mask file ending in {', '.join(MASK_FORMATS)} (lossy JPEG/WebP would change class "
                          f"values)", f"use -o {path.with_suffix('.png').name}")
    return fmt


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    try:
        st = os.stat(path)
        return os.path.realpath(path), (st.st_dev, st.st_ino)
    except OSError:
        return os.path.realpath(path), None


def check_outputs(targets: Sequence[Path], inputs: Sequence[Path], *, force: bool = False,
                  skip_existing: bool = False, extra: Sequence[Path] = (), formats: bool = True) -> None:
    """Refuse, before any image is read, outputs that would lose data or cannot be written.

    Args:
        targets: Mask paths (plus any overlay/visualisation paths).
        inputs: Input images and the model file(s): never overwritten, with or without ``force``.
        force: Replace existing regular files.
        skip_existing: Existing masks will be skipped (not written), so they are not refused.
        extra: More paths that will be written (overlays), checked like ``targets``.
        formats: Check that each target's suffix is a lossless mask format (off for volumes).

    Raises:
        OutputError: An output that is an input, not a regular file, exists (without ``force`` or
            ``skip_existing``), has a lossy suffix, or lies in a folder that cannot be written.
    """
    protected: dict[object, Path] = {}
    for p in inputs:
        real, inode = _identity(p)
        protected[real] = p
        if inode is not None:
            protected[inode] = p
    existing = []
    for t in (*targets, *extra):
        _probe(t, "output")
        real, inode = _identity(t)
        hit = protected.get(real) or (protected.get(inode) if inode is not None else None)
        if hit is not None:
            raise OutputError(f"output {t} is the input {hit}", "an output path that is not one of the inputs",
                              "choose another -o (e.g. a folder ending in /)")
        kind = special_file_kind(t)
        if kind is not None:
            fix = f"write -o {t}/ to put the masks inside it" if kind == "a directory" else "choose another -o"
            raise OutputError(f"output {t} is {kind}", "a regular file path, or a folder ending in /", fix)
        if inode is not None:
            existing.append(str(t))
    for t in targets if formats else ():
        mask_format(Path(t))
    if existing and not (force or skip_existing):
        raise OutputError(f"output {existing[0]} exists" + (f" (+{len(existing) - 1} more)" if len(existing) > 1
                          else ""), "new output paths", "pass --force to overwrite, --skip-existing to resume, "
                          "or choose -o")
    for parent in sorted({Path(t).parent for t in (*targets, *extra)}):
        probe = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise OutputError(f"output directory {parent} is not writable", "a folder you can write to",
                              "check its permissions or choose another -o")
