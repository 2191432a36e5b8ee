"""One clear line for a failed export step: the step, the model's own error, and the fix.

Tracing and converting a third-party model fails in many ways, each with a long traceback. The
user needs three facts: which step failed (eager probe, torch.export, TorchScript fallback, ONNX
conversion), the last line of the error the model (or torch) raised, and what to change: a
missing optional package (``pip install NAME``), a size rule (``--align N``), data-dependent
control flow. :func:`explain` turns an exception into that :class:`ExportError`; the original
stays chained as ``__cause__`` for ``--debug`` / ``UNETRT_DEBUG=1``.
"""

from __future__ import annotations

import re

from ..errors import ExportError

#: Import names whose pip package is named differently.
PIP_NAMES = {"cv2": "opencv-python", "PIL": "pillow", "skimage": "scikit-image", "sklearn": "scikit-learn",
             "yaml": "pyyaml", "nibabel": "nibabel", "einops": "einops", "timm": "timm"}

_MISSING = (re.compile(r"No module named '([\w.]+)'"), re.compile(r"required package `([\w.]+)`"),
            re.compile(r"^from ([\w.]+) import"), re.compile(r"^import ([\w.]+)"))
_SIZE = ("Sizes of tensors must match", "must match the size of tensor", "Expected size", "size mismatch",
         "shapes cannot be multiplied", "should be divisible", "must be divisible", "Padding size should be",
         "is too small", "Kernel size can't be greater", "Output size is too small")
_DATA_DEPENDENT = ("data-dependent", "data dependent", "GuardOnDataDependentSymNode", "Could not guard on",
                   ".item()", "Could not extract specialized integer", "nonzero", "aten._local_scalar_dense")


VALUE_BRANCH_FIX = ("replace .item()/bool(tensor)/nonzero-driven branches in forward with tensor ops "
                    "(torch.where, torch.cond): a fixed --shape or --align does not help, the branch depends on "
                    "the data")
_MISSING_ARG = re.compile(r"forward\(\) missing (\d+) required positional argument")


def frozen_branch_fix(exporter: str, export_error: str) -> str | None:
    """The fix for a parity failure when torch.export refused a branch on tensor values and the
    TorchScript fallback traced it as a constant (``None`` otherwise)."""
    if exporter != "torchscript" or not any(n in (export_error or "") for n in _DATA_DEPENDENT):
        return None
    return ("the model branches on tensor values (torch.export refused it: data-dependent control flow), "
            "and the TorchScript fallback froze that branch at the sample; " + VALUE_BRANCH_FIX)


def fixed_size(model) -> tuple[int, ...] | None:
    """The one input size a model is built for, when it says so: an ``img_size`` factory argument or
    attribute, or MONAI's ViT-based ``feat_size`` x ``patch_size`` (UNETR)."""
    from ..models.build_info import build_config

    size = build_config(model).get("img_size") if model is not None else None
    size = size if size is not None else getattr(model, "img_size", None)
    if size is None and hasattr(model, "feat_size") and hasattr(model, "patch_size"):
        try:
            size = [int(f) * int(p) for f, p in zip(model.feat_size, model.patch_size)]
        except TypeError:
            size = None
    if isinstance(size, int):
        return None
    try:
        return tuple(int(s) for s in size) if size else None
    except (TypeError, ValueError):
        return None


def last_line(exc: BaseException) -> str:
    """``Type: last non-empty line`` of an exception's message (the model's own words)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # torch appends hints after the error ("For more information, run with TORCH_LOGS=..."); skip them
    keep = [ln for ln in lines if not ln.startswith(("For more information", "While executing", "Original traceback",
                                                     "For details about", "https://", "Set TORCH_LOGS",
                                                     "To execute this test", "from user code", "Explanation:"))]
    keep = keep or lines or [""]
    # an import error's first line names the module; other errors end with the cause
    text = keep[0] if _is_missing(exc) else keep[-1]
    return f"{type(exc).__name__}: {text[:240]}" if text else type(exc).__name__


def _is_missing(exc: BaseException) -> bool:
    return isinstance(exc, ImportError) or type(exc).__name__ == "OptionalImportError"


def missing_package(exc: BaseException) -> str | None:
    """The pip name of the package an ImportError (or MONAI's OptionalImportError) misses."""
    for e in _chain(exc):
        if not _is_missing(e):
            continue
        name = getattr(e, "name", None)
        text = str(e).strip()
        if not name:
            for pattern in _MISSING:
                m = pattern.search(text)
                if m:
                    name = m.group(1)
                    break
        if name:
            top = name.split(".")[0]
            return PIP_NAMES.get(top, top.replace("_", "-"))
    return None


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _matches(exc: BaseException, needles) -> bool:
    return any(n in str(e) for e in _chain(exc) for n in needles)


def explain(step: str, exc: BaseException, *, shape: tuple[int, ...] | None = None, every_size: bool = False,
            alignment: int | None = None, model=None) -> ExportError:
    """An :class:`ExportError` naming the failed ``step``, the error's last line and the fix.

    Args:
        step: ``"eager probe"``, ``"torch.export"``, ``"TorchScript fallback"``, ``"ONNX conversion"``.
        exc: What was raised.
        shape: The input shape the step ran at, for the message.
        every_size: The probe failed at every size it tried (``shape`` is the smallest).
        alignment: An alignment known to work, for the ``--align`` hint.
        model: The model, for hints from its own attributes (the one size it is built for).
    """
    text = "x".join(map(str, shape)) if shape else ""
    if every_size:
        where = f"{step} failed at every probed size (smallest: input {text})" if shape else \
            f"{step} failed at every probed size"
    else:
        where = f"{step} failed" + (f" at input {text}" if shape else "")
    package = missing_package(exc)
    if package:
        return ExportError(f"{where}: the model needs an optional package that is not installed "
                           f"({last_line(exc)})", f"{package} importable", f"pip install {package}")
    what = f"{where}: {last_line(exc)}"
    missing = next((m for e in _chain(exc) if isinstance(e, TypeError) for m in [_MISSING_ARG.search(str(e))] if m),
                   None)
    if missing:
        return ExportError(what, "a model whose forward takes one tensor (the image batch)",
                           "wrap it: a factory returning an nn.Module whose forward(x) calls the model with x and "
                           "fixed values for its other inputs (e.g. model(x, timestep=0).sample for a diffusers "
                           "UNet), passed as --model pkg.module:factory")
    if _matches(exc, _DATA_DEPENDENT):
        return ExportError(what, "control flow that depends on shapes, not on tensor values", VALUE_BRANCH_FIX)
    size = fixed_size(model) if every_size else None
    if size and _matches(exc, _SIZE):
        text_size = "x".join(map(str, size))
        return ExportError(what, f"the one input size the model is built for ({text_size}, its img_size)",
                           f"export with --static --shape {text_size}, or build the model with the img_size "
                           "you will serve")
    if _matches(exc, _SIZE):
        hint = f"--align {alignment}" if alignment else "--align auto (the eager probe finds the size rule) or --align N"
        expected = "input sizes the model accepts" + (" (check its in_channels)" if every_size else "")
        return ExportError(what, expected, f"export with {hint}, or --static --shape with a size it accepts")
    if every_size:
        return ExportError(what, "a model that runs on a random NCHW/NCDHW input",
                           "check the factory's keyword arguments (in_channels, spatial_dims); "
                           "UNETRT_DEBUG=1 shows the traceback")
    return ExportError(what, "a model torch can trace and convert",
                       "export with --static --shape, or simplify forward; UNETRT_DEBUG=1 shows the traceback")
