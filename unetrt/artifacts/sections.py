"""The sections of ``manifest.json``: one pydantic dataclass each, with every field documented (the JSON
Schema's descriptions are read from these docstrings). :mod:`unetrt.artifacts.manifest` assembles them
into the :class:`~unetrt.artifacts.manifest.Manifest` and re-exports them.
"""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from . import names
from .source import ModelSource

__all__ = ["ModelSection", "CheckpointRef", "InputSection", "DynamicAxes", "OutputSection", "SizeExample",
           "ExportInfo", "OnnxArtifact", "Verification", "Fp16Section", "Int8Section", "Int8CpuForm", "EngineEntry",
           "ArtifactFile", "SECTION_CONFIG", "Json"]

SECTION_CONFIG = ConfigDict(extra="forbid", validate_assignment=True, json_schema_serialization_defaults_required=True)

Json = Any  # free-form JSON value (informational fields)
Precision = Literal["fp32", "fp16", "int8"]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]


@dataclass(config=SECTION_CONFIG)
class CheckpointRef:
    """The weights an export was made from.

    Attributes:
        path: Absolute path of the checkpoint at export time.
        sha256: Its sha256.
    """

    path: str
    sha256: Sha256


@dataclass(config=SECTION_CONFIG)
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


@dataclass(config=SECTION_CONFIG)
class DynamicAxes:
    """Which input axes are dynamic (``depth`` only for volumetric models)."""

    batch: bool
    height: bool
    width: bool
    depth: Optional[bool] = None


@dataclass(config=SECTION_CONFIG)
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


@dataclass(config=SECTION_CONFIG)
class SizeExample:
    """An input size and the output size it gives (spatial axes only)."""

    input: list[int]
    output: list[int]


@dataclass(config=SECTION_CONFIG)
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


@dataclass(config=SECTION_CONFIG)
class ExportInfo:
    """How the export ran: exporter, opset, requested alignment, notes, shape guards, timings."""

    exporter: str
    opset: int
    align_requested: Union[int, Literal["auto"]]
    notes: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)
    sample_shape: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(config=SECTION_CONFIG)
class OnnxArtifact:
    """The FP32 ONNX file and how it was tidied."""

    path: str
    sha256: Sha256
    opset: int = 18
    nodes: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)
    pads_removed: int = 0
    simplify: Optional[dict[str, Json]] = None


@dataclass(config=SECTION_CONFIG)
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


@dataclass(config=SECTION_CONFIG)
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


@dataclass(config=SECTION_CONFIG)
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


@dataclass(config=SECTION_CONFIG)
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


@dataclass(config=SECTION_CONFIG)
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


@dataclass(config=SECTION_CONFIG)
class ArtifactFile:
    """A file of the export directory with its sha256 and size."""

    path: str
    sha256: Sha256
    bytes: NonNegInt
