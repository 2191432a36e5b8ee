"""``manifest.json``: the typed, versioned description of an export directory.

The exporter writes it; the runtime, the bench, the Triton repository writer and C++ apps read it.
Every section is a dataclass validated by pydantic (alone: strict JSON types, every field present), so a
missing or wrongly typed field is one :class:`~unetrt.errors.ManifestError` naming the field, and the JSON
Schema shipped beside this module (``manifest.schema.json``, see :func:`json_schema`) is generated from
the same classes. :meth:`Manifest.entry` finds the entry of an :class:`~unetrt.artifacts.refs.ArtifactRef`.

Versions: ``schema_version`` 3 is this layout. Older manifests are upgraded on read: version 1
(``"version": 1``, unetrt 0.1) is reshaped, and a version 1 or 2 file may lack the fields added since
(typed parity rows' ``outputs``, ``onnx.labels``, ``nnunet``, ...), which take their defaults; a version 3
file must have every field. A newer version than this unetrt knows is refused with an upgrade hint.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import typing
from dataclasses import field, fields, is_dataclass
from importlib import metadata as _md
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import TypeAdapter, ValidationError

from ..errors import ManifestError
from . import names
from .nnunet_section import NnunetResampling, NnunetSection
from .refs import ArtifactRef
from .section_config import COMPLETE, section
from .sections import (ArtifactFile, Json, CheckpointRef, DynamicAxes, EngineEntry, ExportInfo,
                       Fp16Section, InputSection, Int8CpuForm, Int8Section, LabelsForm, ModelSection, OnnxArtifact,
                       OutputCheck, OutputSection, ParityRow, SizeExample, Verification)

__all__ = ["FORMAT", "SCHEMA_VERSION", "Manifest", "ModelSection", "CheckpointRef", "InputSection", "DynamicAxes",
           "OutputSection", "SizeExample", "ExportInfo", "OnnxArtifact", "LabelsForm", "ParityRow", "OutputCheck", "Verification", "Fp16Section",
           "Int8Section", "Int8CpuForm", "EngineEntry", "ArtifactFile", "NnunetSection", "NnunetResampling", "ArtifactRef", "json_schema", "tool_versions", "find_manifest"]

FORMAT = "unetrt-manifest"
SCHEMA_VERSION = 3
_TOOLS = ("unetrt", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "onnxscript", "onnxsim", "onnxconverter-common",
          "numpy", "tensorrt", "tensorrt-rtx")


@section
class Manifest:
    """Everything an export directory holds and how it was made (``manifest.json``).

    Attributes:
        format: Always ``unetrt-manifest``.
        schema_version: Layout version (3 for this unetrt; readers refuse newer ones, upgrade older ones).
        created: ISO-8601 UTC time of the export.
        tools: Versions of the tools that shaped the artifacts.
        model: Which model, kwargs and weights.
        input: The input tensor and the sizes it admits.
        output: The output tensor.
        mask_values: milesial's ``mask_values`` (class index -> pixel value), if the checkpoint had them.
        export: How the export ran.
        onnx: The FP32 ONNX.
        verification: FP32 ONNX vs eager.
        fp16: The FP16 ONNX, if written.
        int8: The INT8 ONNX (and its CPU form), if written.
        engines: TensorRT plans.
        nnunet: nnU-Net preprocessing and inference settings (exports of an nnU-Net results folder).
        artifacts: Every file with its sha256 (the manifest itself excluded).
    """

    model: ModelSection
    input: InputSection
    output: OutputSection
    export: ExportInfo
    onnx: OnnxArtifact
    verification: Verification
    format: Literal["unetrt-manifest"] = FORMAT
    schema_version: Literal[3] = SCHEMA_VERSION
    created: str = ""
    tools: dict[str, str] = field(default_factory=dict)
    mask_values: Optional[list[Json]] = None
    fp16: Optional[Fp16Section] = None
    int8: Optional[Int8Section] = None
    engines: list[EngineEntry] = field(default_factory=list)
    nnunet: Optional[NnunetSection] = None
    artifacts: list[ArtifactFile] = field(default_factory=list)

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, origin: str = names.MANIFEST) -> "Manifest":
        """Validate a decoded ``manifest.json``.

        Raises:
            ManifestError: Not a unetrt manifest, an unknown or newer ``schema_version``, or a missing
                or wrongly typed field (the message names it).
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ManifestError(f"{origin} is not a unetrt manifest (no \"format\": \"{FORMAT}\")",
                                "a manifest.json written by unet-export", "pass an export directory")
        data, current = _upgrade(dict(data), origin)
        try:  # JSON mode, strict: a C++ reader gets exactly the types the schema says, every field present
            return _ADAPTER.validate_json(json.dumps(data), strict=True, context=COMPLETE if current else None)
        except ValidationError as exc:
            raise _field_error(exc, origin) from None

    @classmethod
    def with_defaults(cls, data: dict[str, Any]) -> "Manifest":
        """Build from a partial dict, filling every field that has a default (for code and tests that
        assemble a manifest; files are read strictly with :meth:`from_dict`).

        Raises:
            ManifestError: A required field without default is missing or a field is wrongly typed.
        """
        try:
            return _ADAPTER.validate_python(data)
        except ValidationError as exc:
            raise _field_error(exc, "manifest") from None

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Manifest":
        """Read ``manifest.json`` from an export directory, the file itself, or beside an artifact.

        Raises:
            ManifestError: Missing, unreadable, not JSON, or invalid.
        """
        file = find_manifest(path)
        try:
            text = file.read_text()
        except OSError as exc:
            raise ManifestError(f"cannot read {file}: {exc.strerror or exc}", "a readable manifest.json",
                                "check the path and permissions") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{file} is not valid JSON ({exc.msg} at line {exc.lineno})",
                                "a manifest.json written by unet-export", "re-export into that directory") from None
        return cls.from_dict(data, str(file))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (what :meth:`write` stores)."""
        return _ADAPTER.dump_python(self, mode="json")

    def write(self, path: str | os.PathLike) -> Path:
        """Write atomically to ``path`` (a directory gets ``manifest.json``); returns the file."""
        from ..fileio import atomic_path

        target = Path(path)
        if target.is_dir():
            target = target / names.MANIFEST
        with atomic_path(target) as tmp, open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")
        return target

    # -- queries ----------------------------------------------------------------------------------
    def artifact_entries(self) -> list[Any]:
        """Every artifact entry, in manifest order (FP32 ONNX, FP16 ONNX, INT8 ONNX and its CPU form,
        engines): each section, list item or nested section that has a ``ref``, with ``path`` and ``sha256``."""
        return _with_ref([getattr(self, f.name) for f in fields(self)])

    def entries(self, ref: ArtifactRef) -> list[Any]:
        """The entries of ``ref`` (several engines may share one precision), in manifest order."""
        return [e for e in self.artifact_entries() if e.ref == ref]

    def entry(self, ref: ArtifactRef) -> Any:
        """The (first) entry of ``ref``, ``None`` when the export does not have it."""
        return next(iter(self.entries(ref)), None)

    def sha256_of(self, file_name: str) -> str | None:
        """The sha256 recorded for an artifact file name (``None`` when not listed)."""
        for entry in [*self.artifacts, *self.engines, *self.artifact_entries()]:
            if Path(entry.path).name == file_name:
                return entry.sha256
        return None

    def engine(self, file_name: str) -> EngineEntry | None:
        """The engine entry of a plan file name."""
        return next((e for e in self.engines if Path(e.path).name == file_name), None)

    def onnx_metadata(self) -> dict[str, str]:
        """The sections stored in the ONNX file's ``metadata_props`` (JSON strings)."""
        data = self.to_dict()
        props = {"unetrt.schema_version": str(SCHEMA_VERSION)}
        for key in ("model", "input", "output", "mask_values"):
            props[f"unetrt.{key}"] = json.dumps(data[key], sort_keys=True)
        return props


_ADAPTER = TypeAdapter(Manifest)


def _with_ref(values: list[Any]) -> list[Any]:
    """The artifact entries among ``values`` (sections with a ``ref``) and inside them, depth first."""
    out: list[Any] = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if hasattr(item, "ref") and is_dataclass(item):
                out.append(item)
                out += _with_ref([getattr(item, f.name) for f in fields(item)])
    return out


def _upgrade(data: dict[str, Any], origin: str) -> tuple[dict[str, Any], bool]:
    """Bring an older layout to :data:`SCHEMA_VERSION` (``(data, False)``: fields added since may be absent and
    take their defaults), pass a current one through (``(data, True)``: every field must be present), or refuse
    an unknown or newer one."""
    version = data.get("schema_version", data.get("version"))
    if version == 1 and "schema_version" not in data:
        data.pop("version")
        data["schema_version"] = SCHEMA_VERSION
        model = dict(data.get("model") or {})
        model.setdefault("weights", "checkpoint" if model.get("checkpoint") else "random-init")
        model.pop("mask_values", None)
        data["model"] = model
        return data, False
    if not isinstance(version, int) or isinstance(version, bool):
        raise ManifestError(f"{origin}: schema_version is {version!r}", f"an integer <= {SCHEMA_VERSION}",
                            "re-export with unet-export ... --force")
    if version > SCHEMA_VERSION:
        raise ManifestError(f"{origin} has schema_version {version}, newer than this unetrt reads "
                            f"({SCHEMA_VERSION})", f"schema_version <= {SCHEMA_VERSION}",
                            "upgrade unetrt (pip install -U unetrt) or re-export with this one")
    if version == 2:  # the v3 layout with fewer fields
        data["schema_version"] = SCHEMA_VERSION
        return data, False
    if version != SCHEMA_VERSION:
        raise ManifestError(f"{origin} has unknown schema_version {version}", f"schema_version {SCHEMA_VERSION}",
                            "re-export with unet-export ... --force")
    return data, True


def _field_error(exc: ValidationError, origin: str) -> ManifestError:
    """One line naming the first bad field of a pydantic validation error."""
    err = exc.errors(include_url=False)[0]
    kind = {"missing": "missing", "extra_forbidden": "unknown", "unexpected_keyword_argument": "unknown"}.get(
        err["type"], "invalid")
    path = [str(p) for p in err["loc"]] + ([str(err["ctx"]["field"])] if "field" in err.get("ctx", {}) else [])
    return _bad_field(origin, kind, path, got=err.get("input"), detail=err["msg"].lower(), count=exc.error_count())


def _bad_field(origin: str, kind: str, path: list[str], *, got: Any = None, detail: str = "",
               count: int = 1) -> ManifestError:
    """The one-line error for a missing, unknown or invalid field at ``path`` (``count`` errors in all)."""
    where = ".".join(path) or "(top level)"
    if kind == "missing":
        what = f"{origin}: required field {where} is missing"
    elif kind == "unknown":
        what = f"{origin}: unknown field {where}"
    else:
        what = f"{origin}: field {where} is {json.dumps(got, default=str)[:60]} ({detail})"
    more = f" (+{count - 1} more)" if count > 1 else ""
    return ManifestError(what + more, f"a valid schema_version {SCHEMA_VERSION} manifest (see manifest.schema.json)",
                         "re-export with unet-export ... --force, or fix that field")


def find_manifest(path: str | os.PathLike) -> Path:
    """``manifest.json`` of a directory, the file itself, or the one beside an artifact file.

    Raises:
        ManifestError: It does not exist.
    """
    p = Path(path)
    file = p / names.MANIFEST if p.is_dir() else (p if p.name == names.MANIFEST else p.parent / names.MANIFEST)
    if not file.is_file():
        raise ManifestError(f"no {names.MANIFEST} at {file.parent}", "a directory written by unet-export",
                            "export into it first, or pass the model file itself")
    return file


def _attribute_docs(cls: type) -> dict[str, str]:
    """``{attribute: description}`` from a Google-style ``Attributes:`` docstring section."""
    docs: dict[str, str] = {}
    lines = (cls.__doc__ or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return docs
    current = None
    for line in lines[start + 1:]:
        text = line.strip()
        head, sep, rest = text.partition(": ")
        if sep and head.isidentifier() and len(line) - len(line.lstrip()) <= 8:
            current, docs[head] = head, rest
        elif text and current:
            docs[current] += " " + text
    return docs


def _section_classes(cls: type, seen: dict[str, type]) -> dict[str, type]:
    """``{name: class}`` of ``cls`` and every section class its fields hold (the schema's ``$defs``)."""
    seen[cls.__name__] = cls
    for hint in typing.get_type_hints(cls).values():
        for inner in _classes_in(hint):
            if inner.__name__ not in seen:
                _section_classes(inner, seen)
    return seen


def _classes_in(hint: Any) -> list[type]:
    if is_dataclass(hint) and isinstance(hint, type):
        return [hint]
    return [c for arg in typing.get_args(hint) for c in _classes_in(arg)]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``manifest.json``, generated from :class:`Manifest`, with every
    field described from the dataclasses' docstrings."""
    schema = _ADAPTER.json_schema(mode="serialization")
    for cls in _section_classes(Manifest, {}).values():
        target = schema if cls is Manifest else schema["$defs"].get(cls.__name__)
        if target is None:
            continue
        target["description"] = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        for name, text in _attribute_docs(cls).items():
            if name in target.get("properties", {}):
                target["properties"][name]["description"] = " ".join(text.split())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://unetrt.invalid/manifest/v{SCHEMA_VERSION}.schema.json"
    schema["title"] = f"unetrt manifest.json, schema_version {SCHEMA_VERSION}"
    return schema


SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shaped the artifacts (installed ones only)."""
    versions = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            versions[name] = _md.version(name)
        except _md.PackageNotFoundError:
            continue
    return versions


def now_iso() -> str:
    """The current UTC time, ISO-8601, seconds."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def write_schema(path: str | os.PathLike = SCHEMA_FILE) -> Path:
    """Regenerate the shipped ``manifest.schema.json`` (``python -m unetrt.artifacts.manifest``)."""
    from ..fileio import atomic_path

    target = Path(path)
    with atomic_path(target) as tmp, open(tmp, "w") as f:
        json.dump(json_schema(), f, indent=2, sort_keys=True)
        f.write("\n")
    return target


if __name__ == "__main__":
    print(write_schema())
