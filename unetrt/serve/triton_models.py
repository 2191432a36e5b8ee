"""The python-backend models a unetrt Triton repository runs (imported by each ``1/model.py``).

They run inside Triton's python-backend stub, where ``triton_python_backend_utils`` is importable;
the stub uses the Python environment that started the server, so unetrt, numpy and the runner's
backend must be installed there.

- :class:`SegmentationModel`: the export's unetrt runner (ONNX Runtime on CPU instances, the
  TensorRT engine on GPU ones); requests of equal shape that the dynamic batcher delivers together
  run as one batch; each request is checked against the export's admissible sizes first.
- :class:`PreprocessModel`: encoded image bytes (UINT8 ``[1, n]``) -> milesial's preprocessing -> padded to the
  alignment, and to the shape buckets when configured (the ``<name>_image`` ensemble's first step).
- :class:`PostprocessModel`: logits -> crop, resize, argmax/threshold, ``mask_values`` -> PNG bytes.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnetrtError, format_message
from .configs import DEFAULT_MAX_PIXELS, PARAM_MAX_PIXELS, served_manifest


#: The wheel's python backend (built for numpy 1) returns wrong or empty data from ``as_numpy`` and
#: ``Tensor(name, array)`` under numpy 2, while DLPack export crashes its stub under numpy 1: numpy 2
#: goes through DLPack, numpy 1 through the backend's own conversions (both measured here).
NUMPY2 = int(np.__version__.split(".")[0]) >= 2


def tensor_in(pb, request, name: str) -> np.ndarray:
    """A request's input as a numpy array."""
    tensor = pb.get_input_tensor_by_name(request, name)
    return np.from_dlpack(tensor) if NUMPY2 else tensor.as_numpy()


def tensor_out(pb, name: str, array: np.ndarray):
    """A response tensor from a numpy array."""
    array = np.ascontiguousarray(array)
    if not NUMPY2:
        return pb.Tensor(name, array)
    if not array.flags.writeable:  # DLPack cannot export read-only arrays
        array = array.copy()
    return pb.Tensor.from_dlpack(name, _owned_capsule(array))


def _owned_capsule(array: np.ndarray):
    """``array.__dlpack__()`` without numpy's capsule destructor: the stub takes the tensor over (it
    calls the DLPack deleter itself) but renames the capsule ``used_dlpack``, not the standard
    ``used_dltensor``, so numpy's destructor would log a ``PyCapsule_GetPointer`` traceback per output."""
    import ctypes

    capsule = array.__dlpack__()
    set_destructor = ctypes.pythonapi.PyCapsule_SetDestructor
    set_destructor.argtypes, set_destructor.restype = [ctypes.py_object, ctypes.c_void_p], ctypes.c_int
    set_destructor(capsule, None)
    return capsule


class _PythonModel:
    """Shared ``initialize``: the backend utilities, the config and its string parameters."""

    def initialize(self, args: dict[str, str]) -> None:
        import triton_python_backend_utils as pb  # only importable inside the stub

        self.pb = pb
        self.config = json.loads(args["model_config"])
        self.params = {k: v.get("string_value", "") for k, v in (self.config.get("parameters") or {}).items()}
        self.version_dir = Path(args["model_repository"]) / str(args["model_version"])
        self.manifest = served_manifest(self.config)  # the export's typed manifest (None: not a unetrt config)
        self.mask_values = self.manifest.mask_values if self.manifest is not None else None
        self.max_pixels = int(self.params.get(PARAM_MAX_PIXELS) or DEFAULT_MAX_PIXELS)
        self.setup(args)

    def setup(self, args: dict[str, str]) -> None:
        """Model-specific initialisation."""

    def placement(self, args: dict[str, str]) -> tuple[bool, dict[str, Any]]:
        """Whether this instance is a GPU one (then pinned to its GPU before CUDA is initialised: one stub
        process per instance) and the runner keywords of a CPU one (``unetrt.threads``)."""
        gpu = args.get("model_instance_kind") == "GPU"
        if gpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(args.get("model_instance_device_id", 0))
        threads = self.params.get("unetrt.threads")
        return gpu, ({"threads": int(threads)} if threads and not gpu else {})

    def error(self, message: str, code: str = "INVALID_ARG"):
        """An error response: ``INVALID_ARG`` (HTTP 400) for what the client sent, ``INTERNAL`` (500) else."""
        error = self.pb.TritonError
        try:
            return self.pb.InferenceResponse(output_tensors=[], error=error(message, getattr(error, code)))
        except (AttributeError, TypeError):  # a python backend without error codes
            return self.pb.InferenceResponse(output_tensors=[], error=error(message))

    def finalize(self) -> None:
        """Nothing held by default."""


class SegmentationModel(_PythonModel):
    """The export's runner behind Triton (see the module docstring)."""

    def setup(self, args: dict[str, str]) -> None:
        from ..runtime import load

        gpu, kw = self.placement(args)
        self.runner = load(self.version_dir, backend="auto" if gpu else "ort", device="cuda" if gpu else "cpu", **kw)
        self.runner.activate()
        self.input_name = next(iter(self.runner.input_constraints))
        self.constraint = self.runner.input_constraints[self.input_name]
        self.output_name = next(iter(self.runner.output_metadata))
        self.batched = int(self.config.get("max_batch_size", 0)) > 0

    def _problem(self, x: np.ndarray) -> str | None:
        c = self.constraint
        pixels = x.size // max(1, int(x.shape[1])) if x.ndim >= 3 else x.size
        if pixels > self.max_pixels:
            shape = "x".join(str(d) for d in x.shape)
            return format_message(f"input {self.input_name!r} of shape {shape} holds {pixels} pixels, more than "
                                  f"the {self.max_pixels} one request may carry", f"N x H x W <= {self.max_pixels}",
                                  "send fewer or smaller images per request (or serve with a larger --max-pixels)")
        if x.dtype.name != c.dtype:
            return format_message(f"input {self.input_name!r} has dtype {x.dtype.name}", f"{c.dtype} ({c.describe()})",
                                  f"send {c.dtype} data")
        problem = c.problem(tuple(int(d) for d in x.shape))
        if problem:
            shape = "x".join(str(d) for d in x.shape)
            return format_message(f"input {self.input_name!r} of shape {shape} is not admissible: {problem[0]}",
                                  c.describe(), problem[1])
        return None

    def execute(self, requests: list) -> list:
        """Check each request, run equal shapes together (batched models), split the outputs back."""
        pb = self.pb
        responses: list[Any] = [None] * len(requests)
        groups: dict[tuple, list[tuple[int, np.ndarray]]] = {}
        for i, request in enumerate(requests):
            x = tensor_in(pb, request, self.input_name)
            problem = self._problem(x)
            if problem:
                responses[i] = self.error(problem)
                continue
            key = tuple(x.shape[1:]) if self.batched else (i,)
            groups.setdefault(key, []).append((i, x))
        limit = self.constraint.max_shape[0] if self.constraint.max_shape else None
        for items in groups.values():
            step = limit or len(items)
            for start in range(0, len(items), step):
                self._run(items[start:start + step], responses)
        return responses

    def _run(self, items: list[tuple[int, np.ndarray]], responses: list) -> None:
        pb = self.pb
        xs = items[0][1] if len(items) == 1 else np.concatenate([x for _, x in items])
        try:
            y = self.runner.infer({self.input_name: xs})[self.output_name]
        except UnetrtError as exc:
            from ..errors import InputError

            for i, _ in items:
                responses[i] = self.error(str(exc), "INVALID_ARG" if isinstance(exc, InputError) else "INTERNAL")
            return
        offset = 0
        for i, x in items:
            n = x.shape[0]
            responses[i] = pb.InferenceResponse(output_tensors=[tensor_out(pb, self.output_name, y[offset:offset + n])])
            offset += n

    def finalize(self) -> None:
        self.runner.deactivate()


def decode_image(data: bytes, in_channels: int | None = None, max_pixels: int | None = None) -> np.ndarray:
    """Encoded image bytes -> the array ``unet-predict`` reads from the same file (EXIF orientation applied,
    every Pillow mode converted as :func:`unetrt.data.images.load_image` does).

    Args:
        data: The file's bytes.
        in_channels: The model's input channels.
        max_pixels: Refuse images of more pixels (read from the header, before decoding).

    Raises:
        UnetrtError: Bytes Pillow cannot decode, or a decompression bomb.
        InputError: A mode or channel count with no conversion, or more than ``max_pixels`` pixels.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    from ..data.images import image_to_array
    from ..errors import InputError

    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if max_pixels is not None and w * h > max_pixels:
                raise InputError(f"image {w}x{h} holds {w * h} pixels, more than the {max_pixels} one request "
                                 "may carry", f"H x W <= {max_pixels}",
                                 "send a smaller image (or serve with a larger --max-pixels)")
            img.load()
            upright = ImageOps.exif_transpose(img)
            return image_to_array(upright if upright is not None else img, in_channels)
    except Image.DecompressionBombError as exc:
        raise InputError(f"image refused as a decompression bomb: {exc}", "an image of sensible size",
                         "send a smaller image") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, UnetrtError):
            raise
        why = "not an image format Pillow knows" if isinstance(exc, UnidentifiedImageError) else \
            re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", " the bytes", str(exc))
        raise InputError(f"cannot decode the image bytes ({len(data)} bytes): {why}",
                         "a PNG or JPEG file's bytes", "send the file's contents unchanged") from None


class PreprocessModel(_PythonModel):
    """Image bytes -> ``INPUT`` (1xCxHxW, padded to the alignment) and ``SIZE`` ([H, W, h, w])."""

    def setup(self, args: dict[str, str]) -> None:
        from .buckets import PARAM_BUCKETS

        self.scale = float(self.params.get("unetrt.scale") or 1.0)
        section = self.manifest.input
        self.channels = section.channels
        self.alignment = section.alignment
        self.min_size = section.min_size or 1
        self.dtype = section.dtype
        self.buckets = tuple(json.loads(self.params.get(PARAM_BUCKETS) or "[]"))

    def _one(self, data: bytes):
        from ..errors import InputError
        from ..runtime.transforms import align_pad, preprocess

        image = decode_image(data, self.channels, self.max_pixels)
        x = preprocess(image, self.scale, self.channels)
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            raise InputError(f"image {w}x{h} (after scale {self.scale:g}) is smaller than the model's minimum "
                             f"{self.min_size}x{self.min_size}", f"H and W >= {self.min_size}", "send a larger image")
        padded, _ = align_pad(x, self.alignment, "replicate", min_size=self.min_size)
        if self.buckets:  # see serve/buckets.py: equal shapes for the dynamic batcher, cropped back by SIZE
            from .buckets import pad_to_buckets

            padded = pad_to_buckets(padded, self.buckets)
        size = np.array([[image.shape[0], image.shape[1], h, w]], dtype=np.int64)
        return padded.astype(self.dtype), size

    def execute(self, requests: list) -> list:
        pb, out = self.pb, []
        for request in requests:
            blobs = tensor_in(pb, request, "IMAGE")
            try:
                if blobs.ndim != 2 or blobs.shape[0] != 1:
                    raise UnetrtError(f"IMAGE of shape {list(blobs.shape)}", "one image file's bytes as UINT8 [1, n]",
                                      "send one request per image")
                x, size = self._one(blobs[0].tobytes())
            except UnetrtError as exc:
                out.append(self.error(str(exc)))
                continue
            out.append(pb.InferenceResponse(output_tensors=[tensor_out(pb, "INPUT", x), tensor_out(pb, "SIZE", size)]))
        return out


class PostprocessModel(_PythonModel):
    """``LOGITS`` + ``SIZE`` -> ``MASK``: PNG bytes (UINT8 ``[1, n]``) identical to the file ``unet-predict`` writes."""

    def setup(self, args: dict[str, str]) -> None:
        self.threshold = float(self.params.get("unetrt.mask_threshold") or 0.5)

    def execute(self, requests: list) -> list:
        from ..runtime.transforms import mask_to_image, postprocess, to_pil_image

        pb, out = self.pb, []
        for request in requests:
            logits = tensor_in(pb, request, "LOGITS")
            full_h, full_w, h, w = (int(v) for v in tensor_in(pb, request, "SIZE")[0])
            try:
                mask = postprocess(np.asarray(logits[..., :h, :w], dtype=np.float32), (full_h, full_w), self.threshold)
                buf = io.BytesIO()
                to_pil_image(mask_to_image(mask, self.mask_values)).save(buf, format="PNG")
            except UnetrtError as exc:
                out.append(self.error(str(exc), "INTERNAL"))
                continue
            mask_png = np.frombuffer(buf.getvalue(), dtype=np.uint8)[None]
            out.append(pb.InferenceResponse(output_tensors=[tensor_out(pb, "MASK", mask_png)]))
        return out
