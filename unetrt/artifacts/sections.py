"""The sections of ``manifest.json``: one pydantic dataclass each, with every field documented (the JSON
Schema's descriptions are read from these docstrings). :mod:`unetrt.artifacts.manifest` assembles them
into the :class:`~unetrt.artifacts.manifest.Manifest` and re-exports them.
"""

from __future__ import annotations

from dataclasses import field
from typing import Literal, Optional, Union

from .engine_entry import EngineEntry
from .refs import ArtifactRef
from .section_config import SECTION_CONFIG, ArtifactPath, Json, NonNegInt, PosInt, Sha256, section
from .source import ModelSource

__all__ = ["ModelSection", "CheckpointRef", "InputSection", "DynamicAxes", "OutputSection", "SizeExample",
           "ExportInfo", "LabelsForm", "OnnxArtifact", "ParityRow", "OutputCheck", "Verification", "Fp16Section", "Int8Section", "Int8CpuForm", "EngineEntry",
           "ArtifactFile", "SECTION_CONFIG", "Json"]



@section
class CheckpointRef:
    """The weights an export was made from.

    Attributes:
        path: Absolute path of the checkpoint at export time.
        sha256: Its sha256.
    """

    path: str
    sha256: Sha256


@section
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


@section
class DynamicAxes:
    """Which input axes are dynamic (``depth`` only for volumetric models)."""

    batch: bool
    height: bool
    width: bool
    depth: Optional[bool] = None


@section
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


@section
class SizeExample:
    """An input size and the output size it gives (spatial axes only)."""

    input: list[int]
    output: list[int]


@section
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


@section
class ExportInfo:
    """How the export ran: exporter, opset, requested alignment, notes, shape guards, timings."""

    exporter: str
    opset: int
    align_requested: Union[int, Literal["auto"]]
    notes: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)
    sample_shape: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@section
class LabelsForm:
    """``model_labels.onnx``: the FP32 graph with the post-processing appended, returning class labels.

    Attributes:
        path: File name in the export directory.
        sha256: Its sha256.
        output: Its output tensor (``labels``, ``Nx1xHxW``).
        dtype: The labels' dtype (``uint8``).
        op: What was appended to the logits: ``ArgMax`` over the classes, or for one class
            ``GreaterOrEqual`` with the float32 logit the sigmoid threshold becomes (then ``Cast``).
        classes: The model's classes (its logits' channels).
        mask_threshold: The one-class sigmoid threshold it decides with (``null`` for more classes).
        check: The labels compared with the numpy post-processing of the logits graph (sizes, pixels,
            mismatches: always 0, or the export fails).
    """

    path: ArtifactPath
    sha256: Sha256
    output: str = "labels"
    dtype: str = "uint8"
    op: Literal["ArgMax", "GreaterOrEqual"] = "ArgMax"
    classes: PosInt = 1
    mask_threshold: Optional[float] = None
    check: dict[str, Json] = field(default_factory=dict)

    @property
    def ref(self) -> ArtifactRef:
        """The artifact this section describes (the labels form of the FP32 ONNX)."""
        return ArtifactRef("onnx", "fp32", "labels")


@section
class OnnxArtifact:
    """The FP32 ONNX file and how it was tidied (and its labels form, if written)."""

    path: ArtifactPath
    sha256: Sha256
    opset: int = 18
    nodes: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)
    pads_removed: int = 0
    simplify: Optional[dict[str, Json]] = None
    labels: Optional[LabelsForm] = None

    @property
    def ref(self) -> ArtifactRef:
        """The artifact this section describes (the FP32 ONNX)."""
        return ArtifactRef("onnx", "fp32")


@section
class OutputCheck:
    """One output tensor of a multi-output model at one sweep size.

    Attributes:
        name: The output's name in the graph.
        shape: Its shape.
        max_abs: Largest absolute difference from eager.
        passed: Within the tolerance.
        reason: Why it failed (empty when it passed).
    """

    name: str
    shape: list[int]
    max_abs: float
    passed: bool
    reason: str


@section
class ParityRow:
    """One size of a parity sweep: the artifact's (first) output against eager FP32 at that input shape.

    The error fields are ``None`` when the size could not be compared (eager or ONNX Runtime failed:
    ``reason`` says which).

    Attributes:
        input_shape: The input's shape (``N x C x H x W`` or ``N x C x D x H x W``).
        output_shape: The artifact's output shape (``None`` when it did not run).
        max_abs: Largest absolute difference.
        mean_abs: Mean absolute difference.
        p99_abs: 99th percentile of the absolute difference.
        max_rel: Largest relative difference.
        rel_to_range: ``max_abs`` relative to the reference's value range.
        argmax_agreement: Class agreement over the decisive pixels (reference top-2 margin above the error bar).
        argmax_agreement_all: Class agreement over every pixel.
        decisive_fraction: Share of pixels that are decisive.
        mean_iou: Mean IoU of the argmax masks.
        dice: Mean Dice of the argmax masks.
        atol: The absolute tolerance applied at this size.
        passed: Within the tolerance (and, for multi-output models, every output).
        reason: Why it failed (empty when it passed).
        outputs: Per-output results of a multi-output model (``None`` for one output).
    """

    input_shape: list[int]
    output_shape: Optional[list[int]]
    max_abs: Optional[float]
    mean_abs: Optional[float]
    p99_abs: Optional[float]
    max_rel: Optional[float]
    rel_to_range: Optional[float]
    argmax_agreement: Optional[float]
    argmax_agreement_all: Optional[float]
    decisive_fraction: Optional[float]
    mean_iou: Optional[float]
    dice: Optional[float]
    atol: Optional[float]
    passed: bool
    reason: str = ""
    outputs: Optional[list[OutputCheck]] = None

    @property
    def compared(self) -> bool:
        """Both sides ran, so the error fields are set."""
        return self.max_abs is not None


@section
class Verification:
    """A parity sweep of an artifact against eager FP32.

    Attributes:
        backend: What ran the artifact (``onnxruntime-cpu``).
        reference: What it was compared with (``eager fp32``).
        performed: Whether the sweep ran (``--no-verify`` skips it).
        tolerance: The bars (``max_abs``, ``argmax_agreement`` ...).
        passed: All sizes passed (``None`` when not performed).
        sizes: One :class:`ParityRow` per size of the sweep.
        note: A caveat a reader should know.
    """

    backend: str
    reference: str
    performed: bool
    tolerance: dict[str, Json]
    passed: Optional[bool]
    sizes: list[ParityRow] = field(default_factory=list)
    note: Optional[str] = None


@section
class Fp16Section:
    """``model_fp16.onnx``: converter, nodes kept in FP32 (with the measured reason), verification."""

    path: ArtifactPath
    sha256: Sha256
    converter: str = ""
    keep_io_types: bool = True
    kept_fp32: list[dict[str, Json]] = field(default_factory=list)
    node_count: int = 0
    parity: list[dict[str, Json]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    calibration: dict[str, Json] = field(default_factory=dict)
    verification: Optional[Verification] = None

    @property
    def ref(self) -> ArtifactRef:
        """The artifact this section describes (the FP16 ONNX)."""
        return ArtifactRef("onnx", "fp16")


@section
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

    path: ArtifactPath
    sha256: Sha256
    runtime: str = "onnxruntime-cpu"
    form: str = ""
    evaluation: list[dict[str, Json]] = field(default_factory=list)
    structure: dict[str, Json] = field(default_factory=dict)

    @property
    def ref(self) -> ArtifactRef:
        """The artifact this section describes (the INT8 ONNX in its CPU form)."""
        return ArtifactRef("onnx", "int8", "cpu")


@section
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

    path: ArtifactPath
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

    @property
    def ref(self) -> ArtifactRef:
        """The artifact this section describes (the INT8 ONNX in the TensorRT form)."""
        return ArtifactRef("onnx", "int8")


@section
class ArtifactFile:
    """A file of the export directory with its sha256 and size."""

    path: ArtifactPath
    sha256: Sha256
    bytes: NonNegInt
