"""``manifest.json``: the typed, versioned description of an export directory.

The exporter writes it; the runtime, the bench, the Triton repository writer and C++ apps read it.
Every section is a dataclass validated by pydantic, so a missing or wrongly typed field is one
:class:`~unetrt.errors.ManifestError` naming the field, and the JSON Schema shipped beside this module
(``manifest.schema.json``, see :func:`json_schema`) is generated from the same classes.

Versions: ``schema_version`` 2 is this layout. Version 1 manifests (``"version": 1``, unetrt 0.1)
are upgraded on read; a newer version than this unetrt knows is refused with an upgrade hint.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from dataclasses import field
from importlib import metadata as _md
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from ..errors import ManifestError
from . import names
from .source import ModelSource

__all__ = ["FORMAT", "SCHEMA_VERSION", "Manifest", "ModelSection", "CheckpointRef", "InputSection", "DynamicAxes",
           "OutputSection", "SizeExample", "ExportInfo", "OnnxArtifact", "Verification", "Fp16Section",
           "Int8Section", "Int8CpuForm", "EngineEntry", "ArtifactFile", "json_schema", "tool_versions", "find_manifest"]

FORMAT = "unetrt-manifest"
SCHEMA_VERSION = 2
_CONFIG = ConfigDict(extra="forbid", validate_assignment=True, json_schema_serialization_defaults_required=True)
_TOOLS = ("unetrt", "torch", "onnx", "onnxruntime", "onnxscript", "onnxsim", "onnxconverter-common",
          "numpy", "tensorrt", "tensorrt-rtx")

Json = Any  # free-form JSON value (informational fields)
Precision = Literal["fp32", "fp16", "int8"]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]


@dataclass(config=_CONFIG)
class CheckpointRef:
    """The weights an export was made from.

    Attributes:
        path: Absolute path of the checkpoint at export time.
        sha256: Its sha256.
    """

    path: str
    sha256: Sha256


@dataclass(config=_CONFIG)
class ModelSection:
    """Which model was exported.

    Attributes:
        arch: Zoo variant (``None`` for a factory).
        factory: ``pkg.module:factory`` or ``file.py:factory`` (``None`` for a zoo variant).
        kwargs: Keyword arguments the model was built with.
        params: Number of parameters.
        checkpoint: The weights file, ``None`` for random initialisation.
        weights: ``"checkpoint"`` or ``"random-init"`` (no checkpoint: the artifacts hold random weights).
    """

    arch: Optional[str]
    factory: Optional[str]
    kwargs: dict[str, Json]
    params: NonNegInt
    checkpoint: Optional[CheckpointRef] = None
    weights: Literal["checkpoint", "random-init"] = "random-init"

    def source(self, checkpoint: str | None = None) -> ModelSource:
        """The :class:`ModelSource` that rebuilds this model (``checkpoint`` overrides the recorded path)."""
        ckpt = checkpoint or (self.checkpoint.path if self.checkpoint else None)
        return ModelSource(arch=self.arch, factory=self.factory, kwargs=self.kwargs, checkpoint=ckpt)


@dataclass(config=_CONFIG)
class DynamicAxes:
    """Which input axes are dynamic (``depth`` only for volumetric models)."""

    batch: bool
    height: bool
    width: bool
    depth: Optional[bool] = None


@dataclass(config=_CONFIG)
class InputSection:
    """The graph input and the sizes it admits.

    Attributes:
        name: Tensor name (``input``).
        channels: C of ``N x C x H x W``.
        dtype: ``float32`` (or ``float16`` for FP16-I/O exports).
        layout: ``NCHW`` (``NCDHW`` for volumes).
        alignment: Every spatial size must be a multiple of this (1 = any size).
        min_size: Smallest admitted spatial size (``None`` = 1).
        dynamic: Which axes are dynamic.
        static_shape: The full shape of a static export, else ``None``.
        pad_to_alignment: Runtimes pad inputs up to the alignment and crop outputs back.
        alignment_source: How the alignment was found: ``spec`` (zoo metadata), ``guards``
            (torch.export's shape guards), ``probed`` (eager probing), ``forced`` (``--align N``).
    """

    name: str
    channels: PosInt
    dtype: str
    layout: Literal["NCHW", "NCDHW"]
    alignment: PosInt
    min_size: Optional[int]
    dynamic: DynamicAxes
    static_shape: Optional[list[int]]
    pad_to_alignment: bool
    alignment_source: Optional[Literal["spec", "guards", "probed", "forced"]] = None

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes."""
        return len(self.layout) - 2


@dataclass(config=_CONFIG)
class SizeExample:
    """An input size and the output size it gives (spatial axes only)."""

    input: list[int]
    output: list[int]


@dataclass(config=_CONFIG)
class OutputSection:
    """The graph output.

    Attributes:
        name: Tensor name (``logits``).
        classes: Output channels.
        dtype: ``float32``.
        geometry: ``same`` (output size = input size) or ``valid`` (unpadded convolutions shrink it).
        examples: Input -> output sizes seen during verification.
        names: Every graph output, in order, for models returning a list/tuple/dict (``logits``,
            ``logits_1``, ... or the dict's keys); empty for one output (``name``).
    """

    name: str
    classes: NonNegInt
    dtype: str
    geometry: Literal["same", "valid"]
    examples: list[SizeExample] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


@dataclass(config=_CONFIG)
class ExportInfo:
    """How the export ran: exporter, opset, requested alignment, notes, shape guards, timings."""

    exporter: str
    opset: int
    align_requested: Union[int, Literal["auto"]]
    notes: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)
    sample_shape: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(config=_CONFIG)
class OnnxArtifact:
    """The FP32 ONNX file and how it was tidied."""

    path: str
    sha256: Sha256
    opset: int = 18
    nodes: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)
    pads_removed: int = 0
    simplify: Optional[dict[str, Json]] = None


@dataclass(config=_CONFIG)
class Verification:
    """A parity sweep of an artifact against eager FP32.

    Attributes:
        backend: What ran the artifact (``onnxruntime-cpu``).
        reference: What it was compared with (``eager fp32``).
        performed: Whether the sweep ran (``--no-verify`` skips it).
        tolerance: The bars (``max_abs``, ``argmax_agreement`` ...).
        passed: All sizes passed (``None`` when not performed).
        sizes: One row per size: ``input_shape``, ``output_shape``, ``max_abs``, ``mean_abs``, ... ``passed``.
        note: A caveat a reader should know.
    """

    backend: str
    reference: str
    performed: bool
    tolerance: dict[str, Json]
    passed: Optional[bool]
    sizes: list[dict[str, Json]] = field(default_factory=list)
    note: Optional[str] = None


@dataclass(config=_CONFIG)
class Fp16Section:
    """``model_fp16.onnx``: converter, nodes kept in FP32 (with the measured reason), verification."""

    path: str
    sha256: Sha256
    converter: str = ""
    keep_io_types: bool = True
    kept_fp32: list[dict[str, Json]] = field(default_factory=list)
    node_count: int = 0
    parity: list[dict[str, Json]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    calibration: dict[str, Json] = field(default_factory=dict)
    verification: Optional[Verification] = None


@dataclass(config=_CONFIG)
class Int8CpuForm:
    """``model_int8_cpu.onnx``: the uint8-asymmetric form ONNX Runtime's CPU kernels run fastest.

    Attributes:
        path: File name in the export directory.
        sha256: Its sha256.
        runtime: What it is for (``onnxruntime-cpu``; TensorRT cannot parse it).
        form: What is quantized and how.
        evaluation: Accuracy vs eager FP32 per evaluation input.
        structure: Q/DQ structure summary.
    """

    path: str
    sha256: Sha256
    runtime: str = "onnxruntime-cpu"
    form: str = ""
    evaluation: list[dict[str, Json]] = field(default_factory=list)
    structure: dict[str, Json] = field(default_factory=dict)


@dataclass(config=_CONFIG)
class Int8Section:
    """``model_int8.onnx``: TensorRT-compatible Q/DQ INT8 (symmetric int8, per-channel weights, float biases).

    Attributes:
        path: The INT8 ONNX (TensorRT parses it; ONNX Runtime runs it too).
        sha256: Its sha256.
        runtime: Which runtimes the file is for.
        quantizer: Library and version that quantized it.
        method: Calibration method (``minmax``, ``entropy``, ``percentile``).
        form: What is quantized and how.
        quantized_nodes: Compute nodes running in INT8.
        kept_float: Nodes left in float, each ``{"node", "op", "reason"}`` with the measured reason.
        evaluation: Accuracy vs eager FP32 per evaluation input (argmax agreement, per-class Dice/IoU,
            max/mean abs error, passed).
        structure: Q/DQ structure check summary (zero points, int8 weights, no int32 bias DQ, I/O).
        bars: The accuracy bars (``min_argmax_agreement``, ``min_mean_dice``).
        calibration: Where the calibration inputs came from, their shapes, what was held out.
        sweep: The INT8 graph run at every verification size (measured, not barred).
        cpu: The ONNX Runtime CPU form, if written.
    """

    path: str
    sha256: Sha256
    runtime: str = "tensorrt, onnxruntime"
    quantizer: str = ""
    method: str = "minmax"
    form: str = ""
    quantized_nodes: NonNegInt = 0
    kept_float: list[dict[str, Json]] = field(default_factory=list)
    evaluation: list[dict[str, Json]] = field(default_factory=list)
    structure: dict[str, Json] = field(default_factory=dict)
    bars: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Json] = field(default_factory=dict)
    sweep: dict[str, Json] = field(default_factory=dict)
    cpu: Optional[Int8CpuForm] = None


@dataclass(config=_CONFIG)
class EngineEntry:
    """A TensorRT plan (no header: trtexec, Triton and C++ load it as is).

    Attributes:
        path: File name in the export directory.
        sha256: Its sha256.
        flavour: ``tensorrt`` or ``tensorrt-rtx``.
        version: The TensorRT version that built it (loading needs the same major.minor unless
            ``options.version_compatible``).
        precision: ``fp32``, ``fp16`` or ``int8``.
        profiles: Optimisation profiles, each ``{input name: {"min", "opt", "max"}}``.
        io: Network inputs and outputs (name, mode, dtype, shape with -1 for dynamic).
        onnx: The ONNX file it was built from.
        onnx_sha256: That file's sha256.
        build_seconds: Build time.
        size_bytes: Plan size.
        options: Build options (workspace, optimisation level, targets, version compatibility, ...).
        fp16_mode: How FP16 was obtained (strongly typed ONNX or ``BuilderFlag.FP16``).
        int8_mode: How INT8 was obtained (strongly typed Q/DQ, or ``BuilderFlag.INT8`` (+ FP16 fallback)).
        compute_capabilities: Where the plan runs (``["SM86", ...]``): the TensorRT-RTX targets, or
            the build GPU for standard TensorRT; ``None`` when not recorded.
        build_gpu: ``{"name", "compute_capability": "8.6"}`` of the build GPU (``None``: CPU-only build).
        tf32: Whether TensorRT could use TF32 for FP32 layers (``None``: not recorded).
    """

    path: str
    sha256: Sha256
    flavour: Literal["tensorrt", "tensorrt-rtx"] = "tensorrt"
    version: str = ""
    precision: Precision = "fp32"
    profiles: list[dict[str, dict[str, list[int]]]] = field(default_factory=list)
    io: list[dict[str, Json]] = field(default_factory=list)
    onnx: str = names.ONNX
    onnx_sha256: Optional[str] = None
    build_seconds: float = 0.0
    size_bytes: int = 0
    options: dict[str, Json] = field(default_factory=dict)
    fp16_mode: Optional[str] = None
    int8_mode: Optional[str] = None
    compute_capabilities: Optional[list[str]] = None
    build_gpu: Optional[dict[str, str]] = None
    tf32: Optional[bool] = None

    def covers(self, shape: list[int] | tuple[int, ...], input_name: str = names.INPUT) -> bool:
        """Whether some profile admits ``shape`` for ``input_name``."""
        for profile in self.profiles:
            p = profile.get(input_name) or next(iter(profile.values()), None)
            if p and len(p["min"]) == len(shape) and \
                    all(lo <= d <= hi for lo, d, hi in zip(p["min"], shape, p["max"])):
                return True
        return False


@dataclass(config=_CONFIG)
class ArtifactFile:
    """A file of the export directory with its sha256 and size."""

    path: str
    sha256: Sha256
    bytes: NonNegInt


@dataclass(config=_CONFIG)
class Manifest:
    """Everything an export directory holds and how it was made (``manifest.json``).

    Attributes:
        format: Always ``unetrt-manifest``.
        schema_version: Layout version (2 for this unetrt; readers refuse newer ones).
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
        artifacts: Every file with its sha256 (the manifest itself excluded).
    """

    model: ModelSection
    input: InputSection
    output: OutputSection
    export: ExportInfo
    onnx: OnnxArtifact
    verification: Verification
    format: Literal["unetrt-manifest"] = FORMAT
    schema_version: Literal[2] = SCHEMA_VERSION
    created: str = ""
    tools: dict[str, str] = field(default_factory=dict)
    mask_values: Optional[list[Json]] = None
    fp16: Optional[Fp16Section] = None
    int8: Optional[Int8Section] = None
    engines: list[EngineEntry] = field(default_factory=list)
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
        data = _upgrade(dict(data), origin)
        _check_schema(data, origin)
        try:
            return _ADAPTER.validate_python(data)
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
    def sha256_of(self, file_name: str) -> str | None:
        """The sha256 recorded for an artifact file name (``None`` when not listed)."""
        entries: list[Any] = [*self.artifacts, *self.engines, self.onnx]
        if self.fp16 is not None:
            entries.append(self.fp16)
        if self.int8 is not None:
            entries += [self.int8] + ([self.int8.cpu] if self.int8.cpu else [])
        for entry in entries:
            if Path(entry.path).name == file_name:
                return entry.sha256
        return None

    def engine(self, file_name: str) -> EngineEntry | None:
        """The engine entry of a plan file name."""
        return next((e for e in self.engines if Path(e.path).name == file_name), None)

    def onnx_file(self, precision: str) -> str | None:
        """The ONNX file name of a precision, if this export has it."""
        if precision == "fp32":
            return self.onnx.path
        if precision == "fp16" and self.fp16 is not None:
            return self.fp16.path
        if precision == "int8" and self.int8 is not None:
            return self.int8.path
        if precision == "int8-cpu" and self.int8 is not None and self.int8.cpu is not None:
            return self.int8.cpu.path
        return None

    def onnx_metadata(self) -> dict[str, str]:
        """The sections stored in the ONNX file's ``metadata_props`` (JSON strings)."""
        data = self.to_dict()
        props = {"unetrt.schema_version": str(SCHEMA_VERSION)}
        for key in ("model", "input", "output", "mask_values"):
            props[f"unetrt.{key}"] = json.dumps(data[key], sort_keys=True)
        return props


_ADAPTER = TypeAdapter(Manifest)


def _upgrade(data: dict[str, Any], origin: str) -> dict[str, Any]:
    """Bring an older layout to :data:`SCHEMA_VERSION`, or refuse an unknown/newer one."""
    version = data.get("schema_version", data.get("version"))
    if version == 1 and "schema_version" not in data:
        data.pop("version")
        data["schema_version"] = SCHEMA_VERSION
        model = dict(data.get("model") or {})
        model.setdefault("weights", "checkpoint" if model.get("checkpoint") else "random-init")
        model.pop("mask_values", None)
        data["model"] = model
        if isinstance(data.get("input"), dict):
            data["input"] = {k: v for k, v in data["input"].items()}
        return data
    if not isinstance(version, int) or isinstance(version, bool):
        raise ManifestError(f"{origin}: schema_version is {version!r}", f"an integer <= {SCHEMA_VERSION}",
                            "re-export with unet-export ... --force")
    if version > SCHEMA_VERSION:
        raise ManifestError(f"{origin} has schema_version {version}, newer than this unetrt reads "
                            f"({SCHEMA_VERSION})", f"schema_version <= {SCHEMA_VERSION}",
                            "upgrade unetrt (pip install -U unetrt) or re-export with this one")
    if version != SCHEMA_VERSION:
        raise ManifestError(f"{origin} has unknown schema_version {version}", f"schema_version {SCHEMA_VERSION}",
                            "re-export with unet-export ... --force")
    return data


_VALIDATOR: Any = None


def _check_schema(data: dict[str, Any], origin: str) -> None:
    """Validate against the JSON Schema (what C++ readers rely on: every field present, every type right)."""
    global _VALIDATOR
    import jsonschema

    if _VALIDATOR is None:
        _VALIDATOR = jsonschema.Draft202012Validator(json_schema())
    errors = list(_VALIDATOR.iter_errors(data))
    if not errors:
        return
    err = jsonschema.exceptions.best_match(errors)
    where = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "required":
        missing = next(k for k in err.validator_value if isinstance(err.instance, dict) and k not in err.instance)
        what = f"{origin}: required field {'.'.join(filter(None, (where, missing)))} is missing"
    elif err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        what = f"{origin}: unknown field {'.'.join(filter(None, (where, extra[0] if extra else '?')))}"
    else:
        got = json.dumps(err.instance, default=str)
        what = f"{origin}: field {where or '(top level)'} is {got[:60]} ({err.message[:120]})"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    raise ManifestError(what + more, f"a valid schema_version {SCHEMA_VERSION} manifest (see manifest.schema.json)",
                        "re-export with unet-export ... --force, or fix that field")


def _field_error(exc: ValidationError, origin: str) -> ManifestError:
    """One line naming the first bad field of a validation error."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "missing":
        what = f"{origin}: required field {where} is missing"
    elif err["type"] == "extra_forbidden":
        what = f"{origin}: unknown field {where}"
    else:
        got = json.dumps(err.get("input"), default=str)
        what = f"{origin}: field {where} is {got[:60]} ({err['msg'].lower()})"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
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


_SECTIONS = (Manifest, ModelSection, CheckpointRef, InputSection, DynamicAxes, OutputSection, SizeExample,
             ExportInfo, OnnxArtifact, Verification, Fp16Section, Int8Section, Int8CpuForm, EngineEntry,
             ArtifactFile)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``manifest.json``, generated from :class:`Manifest`, with every
    field described from the dataclasses' docstrings."""
    schema = _ADAPTER.json_schema(mode="serialization")
    for cls in _SECTIONS:
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
