"""``ArtifactRef``: which artifact of an export directory a backend runs, in one typed value.

A reference is a kind (the eager ``module``, an ``onnx`` graph or a TensorRT ``engine``), a
precision and, where one precision has several files, a form (``cpu``: the uint8 INT8 graph ONNX
Runtime's CPU kernels run fastest; ``labels``: the FP32 graph returning uint8 class labels). :attr:`ArtifactRef.file_name` is its file
(:mod:`unetrt.artifacts.names`), :meth:`unetrt.artifacts.manifest.Manifest.entry` its manifest entry,
and :attr:`ArtifactRef.key` the short spelling the bench's cache directories and reports use.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RegistrationError
from . import names

__all__ = ["ArtifactRef", "KINDS", "ONNX_FP32"]

#: The three artifact kinds a backend can run.
KINDS = ("module", "onnx", "engine")


@dataclass(frozen=True)
class ArtifactRef:
    """One artifact of an export.

    Attributes:
        kind: ``module`` (the checkpoint, run eagerly), ``onnx`` or ``engine``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        form: ``""`` for the standard file of that precision, ``cpu`` for the INT8 CPU form, ``labels`` for
            the FP32 graph with ArgMax (or the one-class threshold) appended.
    """

    kind: str
    precision: str = "fp32"
    form: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RegistrationError(f"artifact kind {self.kind!r}", f"one of {', '.join(KINDS)}",
                                    "fix the artifact reference")
        if self.kind != "module" and names.artifact_name(self.kind, self.precision, self.form) is None:
            raise RegistrationError(f"no {self.kind} file is named for precision {self.precision!r}"
                                    + (f" form {self.form!r}" if self.form else ""),
                                    "a (kind, precision, form) listed in unetrt.artifacts.names",
                                    "add its file name there")

    @property
    def variant(self) -> str:
        """The precision with its form: ``fp16``, ``int8-cpu``."""
        return f"{self.precision}-{self.form}" if self.form else self.precision

    @property
    def file_name(self) -> str | None:
        """The file in the export directory (``None`` for the eager module: that is the checkpoint)."""
        return None if self.kind == "module" else names.artifact_name(self.kind, self.precision, self.form)

    @property
    def key(self) -> str:
        """``onnx``, ``onnx_fp16``, ``onnx_int8_cpu``, ``engine_int8``, ``module_fp16`` (cache and report keys)."""
        variant = self.variant.replace("-", "_")
        return self.kind if variant == "fp32" else f"{self.kind}_{variant}"

    @property
    def label(self) -> str:
        """``fp16 ONNX``, ``int8-cpu ONNX``, ``fp32 engine``, ``fp32 eager model`` (for messages)."""
        return f"{self.variant} " + {"onnx": "ONNX", "engine": "engine", "module": "eager model"}[self.kind]

    def __str__(self) -> str:
        return self.key


#: The FP32 ONNX every export has.
ONNX_FP32 = ArtifactRef("onnx")
