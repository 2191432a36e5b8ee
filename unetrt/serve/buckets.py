"""Shape buckets of the ``<name>_image`` ensemble: mixed-size traffic padded to a few sizes so Triton batches it.

Triton's dynamic batcher merges only requests of equal shape, so images of many sizes run one at a time. With
``unetrt triton --with-preprocess --shape-buckets 256,512,1024`` the ensemble's preprocessing pads each image's
H and W (independently) up to the smallest bucket that holds them; the segmentation model then sees at most
``len(buckets)**2`` shapes, and the post-processing crops the logits back to the image (the ``SIZE`` tensor the
ensemble already carries) before resizing and argmax.

The padding is the model's own alignment rule carried further: bottom/right, replicate (edge) padding, the
content at the origin, so the pooling grid and every pixel the un-bucketed request would have seen are the
same; a side larger than every bucket keeps the plain alignment pad (served, just not batched with others).
What can change is the context beyond the aligned border (replicated edge pixels instead of the network's
zero padding), so masks near the bottom/right border may differ from the un-bucketed ones when a bucket is
larger than the aligned size; an image whose aligned size is a bucket gets the identical mask.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..errors import ServeError

__all__ = ["PARAM_BUCKETS", "parse_buckets", "check_buckets", "bucket_for", "pad_to_buckets"]

#: Model-config parameter of ``<name>_preprocess`` holding the buckets (JSON list of ints).
PARAM_BUCKETS = "unetrt.shape_buckets"


def parse_buckets(value: str | Iterable[int] | None) -> tuple[int, ...]:
    """``"256,512,1024"`` (or a sequence of ints) -> sorted, distinct bucket sizes; ``None``/empty -> ``()``.

    Raises:
        ServeError: A non-integer or non-positive entry.
    """
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if isinstance(item, bool) or not text.isdigit() or int(text) < 1:
            raise ServeError(f"shape bucket {text!r}", "positive integers, comma-separated (e.g. 256,512,1024)",
                             "fix --shape-buckets")
        out.append(int(text))
    return tuple(sorted(set(out)))


def check_buckets(buckets: tuple[int, ...], *, alignment: int, min_size: int, max_hw: tuple[int, int] | None = None,
                  min_hw: tuple[int, int] | None = None) -> tuple[int, ...]:
    """Refuse buckets the model cannot run: each must be a multiple of the export's alignment, at least its
    minimum size, and inside an engine profile's H/W range when one is given.

    Raises:
        ServeError: The first bad bucket, with the sizes that would work.
    """
    for b in buckets:
        if b % alignment or b < min_size:
            ok = max(alignment, -(-min_size // alignment) * alignment)
            raise ServeError(f"shape bucket {b} for an export with alignment {alignment} and minimum size {min_size}",
                             f"multiples of {alignment} of at least {min_size}", f"use e.g. {ok}, {2 * ok}, {4 * ok}")
        if max_hw is not None and b > min(max_hw):
            raise ServeError(f"shape bucket {b} exceeds the engine profile's maximum H/W {max_hw[0]}x{max_hw[1]}",
                             f"buckets <= {min(max_hw)}", "drop the bucket or rebuild the engine with a larger profile")
        if min_hw is not None and b < max(min_hw):
            raise ServeError(f"shape bucket {b} is below the engine profile's minimum H/W {min_hw[0]}x{min_hw[1]}",
                             f"buckets >= {max(min_hw)}", "drop the bucket")
    return buckets


def bucket_for(size: int, buckets: tuple[int, ...]) -> int | None:
    """The smallest bucket holding ``size``, or ``None`` when every bucket is smaller."""
    return next((b for b in buckets if b >= size), None)


def pad_to_buckets(padded: np.ndarray, buckets: tuple[int, ...]) -> np.ndarray:
    """Pad an alignment-padded ``...xHxW`` array bottom/right (edge values) up to its H and W buckets.

    ``padded`` is the output of :func:`~unetrt.runtime.transforms.align_pad` with ``"replicate"``: padding
    its edge again equals padding the original image's edge further, so the crop box of that call still
    undoes the whole pad. Axes larger than every bucket are left as they are.
    """
    h, w = padded.shape[-2:]
    th, tw = bucket_for(h, buckets) or h, bucket_for(w, buckets) or w
    if (th, tw) == (h, w):
        return padded
    pad = [(0, 0)] * (padded.ndim - 2) + [(0, th - h), (0, tw - w)]
    return np.pad(padded, pad, mode="edge")


def bucket_parameters(buckets: tuple[int, ...], contract, config) -> dict[str, str]:
    """The preprocessing model's parameter for ``buckets``, checked against the export (alignment, minimum
    size) and, for a ``tensorrt_plan`` model, its engine profiles.

    Raises:
        ServeError: A bucket the model cannot run (see :func:`check_buckets`).
    """
    import json

    spec = contract.manifest.input
    if -1 not in contract.dims()[1:]:
        raise ServeError("--shape-buckets for an export with a static H and W", "an export with dynamic H/W",
                         "re-export with dynamic sizes, or drop --shape-buckets")
    max_hw = min_hw = None
    if config.platform == "tensorrt_plan":
        profiles = [p.get(contract.input_name) or next(iter(p.values())) for p in contract.engine().profiles]
        if profiles:
            max_hw = (min(p["max"][2] for p in profiles), min(p["max"][3] for p in profiles))
            min_hw = (max(p["min"][2] for p in profiles), max(p["min"][3] for p in profiles))
    check_buckets(tuple(buckets), alignment=int(spec.alignment or 1), min_size=int(spec.min_size or 1),
                  max_hw=max_hw, min_hw=min_hw)
    return {PARAM_BUCKETS: json.dumps([int(b) for b in buckets])}
