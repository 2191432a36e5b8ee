"""Synthetic segmentation data and a dependency-free PNG reader/writer (used by the demo model)."""

from .png import PNGError, decode_png, encode_png, read_png, write_png
from .synthetic import (CLASSES, DEFAULT_SIZE_RANGE, MASK_VALUES, colour_mask, labels_from_grey,
                        make_dataset, make_sample, sample_size)

__all__ = [
    "CLASSES", "DEFAULT_SIZE_RANGE", "MASK_VALUES", "make_sample", "make_dataset", "sample_size",
    "colour_mask", "labels_from_grey",
    "PNGError", "encode_png", "decode_png", "write_png", "read_png",
]
