"""Triton ``config.pbtxt`` files as ``ModelConfig`` protobuf messages (never string templates).

Messages are built with ``tritonclient.grpc.model_config_pb2``, written with protobuf's
``text_format`` and parsed back and checked before a repository is committed, so a file Triton
would refuse at load time is refused here first.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ServeError
from .deps import model_config_pb2, require

#: numpy dtype name -> Triton data type (``"bytes"``: Triton's TYPE_STRING / BYTES tensors).
TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "int32": "TYPE_INT32",
                 "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL", "bytes": "TYPE_STRING"}
#: Names that work as a repository directory and as a URL path segment (/v2/models/<name>/infer).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: Parameter key under which the python models and the client find the export's manifest (JSON).
PARAM_MANIFEST = "unetrt.manifest"
#: Parameter key of the most pixels (N x H x W, or H x W of an encoded image) one request may carry.
PARAM_MAX_PIXELS = "unetrt.max_pixels"
#: Its default: one 2048 x 2048 image per request (larger requests get 400 / INVALID_ARG).
DEFAULT_MAX_PIXELS = 2048 * 2048


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, numpy dtype name (or ``"bytes"``) and dims without the batch axis
    (``-1`` for a dynamic dimension)."""

    name: str
    dtype: str
    dims: tuple[int, ...]


def check_name(name: str) -> str:
    """Return ``name`` if Triton can serve a model under it, else raise :class:`ServeError`."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ServeError(f"model name {name!r} cannot be used in a Triton repository",
                         "1-128 characters from letters, digits, '_', '.', '-', starting with a letter or digit "
                         "(it is a directory name and part of the /v2/models/<name> URL)", "pass another --name")
    return name


def _tensor(message, spec: TensorSpec) -> None:
    message.name = spec.name
    message.data_type = model_config_pb2().DataType.Value(TRITON_DTYPES[spec.dtype])
    message.dims.extend(int(d) for d in spec.dims)


def model_config(name: str, *, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], max_batch_size: int,
                 platform: str | None = None, backend: str | None = None, kind: str = "KIND_CPU",
                 instances: int = 1, dynamic_batching: bool = True, max_queue_delay_us: int = 0,
                 parameters: Mapping[str, Any] | None = None, default_model_filename: str | None = None,
                 gpu_accelerator: Mapping[str, str] | None = None):
    """A ``ModelConfig`` for one model.

    Args:
        name: Model name (also its directory).
        inputs: Input tensors (dims without the batch axis when ``max_batch_size > 0``).
        outputs: Output tensors.
        max_batch_size: Largest batch Triton may form (0: the model takes no batch axis).
        platform: ``"tensorrt_plan"``, ``"onnxruntime_onnx"`` or ``"ensemble"``.
        backend: ``"python"`` (or another backend name) when no platform is given.
        kind: ``"KIND_CPU"`` or ``"KIND_GPU"``.
        instances: Model instances per device.
        dynamic_batching: Add a ``dynamic_batching`` section (requires ``max_batch_size > 0``).
        max_queue_delay_us: How long the dynamic batcher may hold a request to form a larger batch.
        parameters: Strings (others are JSON-encoded) passed to the model as ``parameters``.
        default_model_filename: The model file name when not the platform's default.
        gpu_accelerator: ONNX Runtime's TensorRT execution accelerator parameters
            (``{"precision_mode": "FP16", ...}``), written under ``optimization``.
    """
    pb = model_config_pb2()
    config = pb.ModelConfig(name=check_name(name), max_batch_size=int(max_batch_size))
    if platform:
        config.platform = platform
    if backend:
        config.backend = backend
    for spec in inputs:
        _tensor(config.input.add(), spec)
    for spec in outputs:
        _tensor(config.output.add(), spec)
    if platform != "ensemble":
        config.instance_group.add(kind=pb.ModelInstanceGroup.Kind.Value(kind), count=int(instances))
    if dynamic_batching and max_batch_size > 0:
        config.dynamic_batching.max_queue_delay_microseconds = int(max_queue_delay_us)
    for key, value in (parameters or {}).items():
        config.parameters[key].string_value = value if isinstance(value, str) else json.dumps(value)
    if default_model_filename:
        config.default_model_filename = default_model_filename
    if gpu_accelerator is not None:
        acc = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
        for key, value in gpu_accelerator.items():
            acc.parameters[key] = str(value)
    return config


def ensemble_config(name: str, *, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], max_batch_size: int,
                    steps: Sequence[tuple[str, Mapping[str, str], Mapping[str, str]]]):
    """A ``platform: "ensemble"`` ``ModelConfig``; each step is ``(model, input_map, output_map)`` where
    the maps go from the step model's tensor names to the ensemble's tensor names."""
    config = model_config(name, inputs=inputs, outputs=outputs, max_batch_size=max_batch_size, platform="ensemble",
                          dynamic_batching=False)
    for model, input_map, output_map in steps:
        step = config.ensemble_scheduling.step.add(model_name=check_name(model), model_version=-1)
        step.input_map.update(input_map)
        step.output_map.update(output_map)
    return config


def to_text(config) -> str:
    """The ``config.pbtxt`` text of a ``ModelConfig``."""
    text_format = require("google.protobuf.text_format", "writing Triton model configurations")
    return text_format.MessageToString(config)


def read_config(path: str | os.PathLike):
    """Parse a ``config.pbtxt`` (or the one in a model directory) into a ``ModelConfig``.

    Raises:
        ServeError: The file is missing or is not a valid ``ModelConfig`` text message.
    """
    text_format = require("google.protobuf.text_format", "reading Triton model configurations")
    path = Path(path)
    path = path / "config.pbtxt" if path.is_dir() else path
    try:
        return text_format.Parse(path.read_text(), model_config_pb2().ModelConfig())
    except (OSError, text_format.ParseError) as exc:
        raise ServeError(f"cannot read Triton config {path}: {exc}", "a ModelConfig in protobuf text format",
                         "regenerate the repository (unetrt triton ... --force)") from None


def validate(config, directory: str, models: Mapping[str, Any]) -> None:
    """Check a parsed config the way Triton checks it at load time (the subset unetrt writes).

    Args:
        config: A ``ModelConfig``.
        directory: The model directory's name (must equal ``config.name``).
        models: Every config of the repository by name (ensemble steps must refer to them).

    Raises:
        ServeError: A rule Triton enforces is broken.
    """
    def fail(what: str) -> None:
        raise ServeError(f"Triton config of {directory!r}: {what}", "a configuration Triton loads",
                         "this is a unetrt bug: please report it with the export's manifest.json")

    if config.name != directory:
        fail(f"name {config.name!r} differs from its directory")
    if bool(config.platform) == bool(config.backend):
        fail("exactly one of platform and backend must be set")
    if config.max_batch_size < 0:
        fail(f"max_batch_size {config.max_batch_size} < 0")
    if config.HasField("dynamic_batching") and config.max_batch_size == 0:
        fail("dynamic batching without a batch axis (max_batch_size 0)")
    for tensor in list(config.input) + list(config.output):
        if not tensor.name or not tensor.dims or any(d == 0 or d < -1 for d in tensor.dims):
            fail(f"tensor {tensor.name!r} has dims {list(tensor.dims)}")
    if config.platform == "ensemble":
        _validate_ensemble(config, models, fail)
    elif not config.instance_group or any(g.count < 1 for g in config.instance_group):
        fail("an instance_group with count >= 1 is required")


def _validate_ensemble(config, models: Mapping[str, Any], fail) -> None:
    produced = {t.name for t in config.input}
    for step in config.ensemble_scheduling.step:
        target = models.get(step.model_name)
        if target is None:
            fail(f"step model {step.model_name!r} is not in the repository")
        if config.max_batch_size > target.max_batch_size:
            fail(f"max_batch_size {config.max_batch_size} exceeds {step.model_name}'s {target.max_batch_size}")
        names_in = {t.name for t in target.input}
        names_out = {t.name for t in target.output}
        if set(step.input_map) != names_in or not set(step.output_map) <= names_out:
            fail(f"step {step.model_name!r} maps {sorted(step.input_map)} -> {sorted(step.output_map)}, "
                 f"model has inputs {sorted(names_in)} and outputs {sorted(names_out)}")
        missing = [v for v in step.input_map.values() if v not in produced]
        if missing:
            fail(f"step {step.model_name!r} reads {missing} before any step produces them")
        produced |= set(step.output_map.values())
    absent = [t.name for t in config.output if t.name not in produced]
    if absent:
        fail(f"outputs {absent} are produced by no step")


def served_manifest(config: Mapping[str, Any]):
    """The export's :class:`~unetrt.artifacts.manifest.Manifest` a unetrt-written model config carries
    (``None`` for other models)."""
    from ..artifacts.manifest import Manifest

    raw = ((config.get("parameters") or {}).get(PARAM_MANIFEST) or {}).get("string_value")
    return Manifest.from_dict(json.loads(raw), f"parameter {PARAM_MANIFEST}") if raw else None
