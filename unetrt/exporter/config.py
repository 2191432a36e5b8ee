"""What an export is asked to do: :class:`ExportConfig` and its option groups.

The groups mirror ``unet-export``'s option groups: verification (``--no-verify``, ``--atol``),
FP16 (``--fp16*``), INT8 (``--int8*``, ``--calib-*``) and the TensorRT engine (``--engine``, ``--trt``,
profiles and builder settings). Each is a small dataclass with the CLI's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

DEFAULT_OPSET = 18

__all__ = ["DEFAULT_OPSET", "EngineOptions", "ExportConfig", "Fp16Options", "Int8Options", "LabelsOptions", "VerifyOptions"]


@dataclass
class VerifyOptions:
    """The FP32 parity sweep: ONNX Runtime CPU against eager PyTorch.

    Attributes:
        enabled: Run the sweep (``--no-verify`` turns it off).
        atol_factor: The bar: max abs error <= ``atol_factor * max(1, |ref|max)``.
    """

    enabled: bool = True
    atol_factor: float = 1e-4


@dataclass
class Fp16Options:
    """``model_fp16.onnx``: FP16 weights and activations, verified against eager FP32.

    Attributes:
        enabled: Write it (and build the engine from it).
        io: FP16 inputs and outputs too (FP32 I/O otherwise).
        atol: max abs <= ``atol * max(1, |ref|max)`` against eager FP32.
        min_argmax: Minimum argmax (mask) agreement with eager FP32.
    """

    enabled: bool = False
    io: bool = False
    atol: float = 1e-2
    min_argmax: float = 0.995


@dataclass
class Int8Options:
    """``model_int8.onnx`` (TensorRT Q/DQ: symmetric int8, per-channel weights, float biases).

    Attributes:
        enabled: Write it (and, with an engine, ``model_int8.engine``).
        cpu: Also write ``model_int8_cpu.onnx`` (uint8 asymmetric, ONNX Runtime CPU's fastest form).
        calib_count: Calibration inputs taken from the calibration images (the next ones are held out).
        calib_method: ``minmax``, ``entropy`` or ``percentile``.
        min_argmax: Minimum mask (argmax) agreement with eager FP32.
        min_dice: Minimum mean Dice of the INT8 masks against the FP32 masks.
        max_float: Most nodes the accuracy search may keep in float (``None``: no limit).
    """

    enabled: bool = False
    cpu: bool = False
    calib_count: int = 16
    calib_method: str = "minmax"
    min_argmax: float = 0.99
    min_dice: float = 0.98
    max_float: int | None = None

    @property
    def wanted(self) -> bool:
        """Whether any INT8 file is written."""
        return self.enabled or self.cpu


@dataclass
class EngineOptions:
    """The TensorRT engine build (trtexec-style options).

    Attributes:
        build: ``None`` = build when a TensorRT flavour imports; ``True`` = must build; ``False`` = never.
        flavour: ``auto``, ``tensorrt`` or ``tensorrt-rtx``.
        profiles: ``[{input: ShapeProfile}]``; ``None`` = derived from the model's size rule.
        tf32: ``None``: off for FP32 engines, TensorRT's default for FP16 ones.
        detailed_profiling: ``profiling_verbosity=DETAILED`` (layer detail in ``unetrt inspect``).
        hardware_compatibility: ``ampere_plus`` / ``same_compute_capability`` plans (standard TensorRT).
        strip_weights: Weight-stripped plans, refitted from the ONNX before they run.
        refittable: Refittable plans (``BuilderFlag.REFIT``).
    """

    build: bool | None = None
    flavour: str = "auto"
    profiles: list[dict[str, Any]] | None = None
    workspace_bytes: int | None = None
    optimization_level: int | None = None
    timing_cache: str | None = None
    compute_capabilities: Sequence[str] | None = None
    version_compatible: bool = False
    tf32: bool | None = None
    detailed_profiling: bool = True
    hardware_compatibility: str | None = None
    strip_weights: bool = False
    refittable: bool = False

    def portability(self) -> dict:
        """The plan-portability keywords of :func:`unetrt.exporter.trt_builder.build_engine`."""
        return {"hardware_compatibility": self.hardware_compatibility, "strip_weights": self.strip_weights,
                "refittable": self.refittable}


@dataclass
class LabelsOptions:
    """The labels form of the FP32 graph (``model_labels.onnx``, :mod:`unetrt.exporter.labels`).

    Attributes:
        enabled: Write it: ArgMax (one class: the sigmoid threshold) appended, uint8 labels out.
        threshold: The sigmoid threshold a one-class model's labels decide with.
    """

    enabled: bool = False
    threshold: float = 0.5


#: Flat keywords accepted by :class:`ExportConfig` for its groups' fields: ``fp16=True`` is
#: ``fp16_options=Fp16Options(enabled=True)``, ``engine=False`` is ``EngineOptions(build=False)``...
FLAT_KEYWORDS: dict[str, tuple[str, str]] = {
    "verify": ("verify_options", "enabled"), "atol_factor": ("verify_options", "atol_factor"),
    "fp16": ("fp16_options", "enabled"), "fp16_io": ("fp16_options", "io"),
    "fp16_atol": ("fp16_options", "atol"), "fp16_min_argmax": ("fp16_options", "min_argmax"),
    "int8": ("int8_options", "enabled"), "int8_cpu": ("int8_options", "cpu"),
    "calib_count": ("int8_options", "calib_count"), "calib_method": ("int8_options", "calib_method"),
    "int8_min_argmax": ("int8_options", "min_argmax"), "int8_min_dice": ("int8_options", "min_dice"),
    "int8_max_float": ("int8_options", "max_float"), "engine": ("engine_options", "build"),
    "labels_output": ("labels_options", "enabled"), "fp32_labels": ("labels_options", "enabled"),
    "labels_threshold": ("labels_options", "threshold"),
}


@dataclass
class _ExportFields:
    """The fields of :class:`ExportConfig` (its dataclass ``__init__`` is the one the config extends)."""

    arch: str | None = None
    factory: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    output_dir: str = "export"
    opset: int = DEFAULT_OPSET
    static_shape: tuple[int, ...] | None = None
    align: int | None = None
    simplify: bool = True
    force: bool = False
    calib_images: str | None = None
    labels_options: LabelsOptions = field(default_factory=LabelsOptions)
    verify_options: VerifyOptions = field(default_factory=VerifyOptions)
    fp16_options: Fp16Options = field(default_factory=Fp16Options)
    int8_options: Int8Options = field(default_factory=Int8Options)
    engine_options: EngineOptions = field(default_factory=EngineOptions)


class ExportConfig(_ExportFields):
    """Everything ``unet-export`` needs. ``arch`` or ``factory`` names the model.

    Keyword-only. Besides its fields it takes the flat keywords of :data:`FLAT_KEYWORDS` as a
    shorthand for one field of a group (``ExportConfig(arch="milesial", fp16=True, verify=False)``);
    they are applied over the groups given.

    Attributes:
        align: ``None`` = auto (derived from the spec and torch.export's shape guards); an int
            forces that alignment (1 = exact at every size or fail).
        static_shape: ``(batch, H, W)`` (or ``(batch, D, H, W)``) to export a static graph;
            ``(H, W)`` for a 2-D and ``(D, H, W)`` for a 3-D model mean batch 1;
            ``None`` = dynamic N and spatial axes.
        calib_images: Folder of images / .npy arrays driving the FP16 search and INT8 calibration
            (default: sweep sizes).
        labels_options: Whether to write ``model_labels.onnx`` (flat keywords ``labels_output`` or
            ``fp32_labels``, ``labels_threshold``).
    """

    def __init__(self, **kwargs: Any) -> None:
        flat = {k: kwargs.pop(k) for k in list(kwargs) if k in FLAT_KEYWORDS}
        super().__init__(**kwargs)  # the dataclass __init__: unknown keywords are a TypeError there
        for key, value in flat.items():
            group, attr = FLAT_KEYWORDS[key]
            setattr(self, group, replace(getattr(self, group), **{attr: value}))
