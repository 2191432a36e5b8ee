"""Synthetic segmentation data (used by the demo model); image files are read and written with Pillow."""

from .synthetic import (CLASSES, DEFAULT_SIZE_RANGE, MASK_VALUES, colour_mask, labels_from_grey,
                        make_dataset, make_sample, sample_size)

__all__ = [
    "CLASSES", "DEFAULT_SIZE_RANGE", "MASK_VALUES", "make_sample", "make_dataset", "sample_size",
    "colour_mask", "labels_from_grey",
]
