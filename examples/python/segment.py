"""Segment one PNG with a model exported by ``unet-export`` and write the mask as a PNG.

The export directory is opened with ``unetrt.runtime.load``: its TensorRT engine on a CUDA GPU
(when TensorRT is installed), else the ONNX model on ONNX Runtime. Pre/post-processing is
milesial's (``/255``, argmax over classes, grey levels = the manifest's ``mask_values``).

Usage: python examples/python/segment.py export/demo image.png mask.png
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from unetrt.runtime import align_pad, crop, load, mask_to_image, postprocess, preprocess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Segment an image with an exported unetrt model.")
    parser.add_argument("model", help="export directory written by unet-export (manifest.json + model files)")
    parser.add_argument("image", help="input PNG (grey, RGB or RGBA)")
    parser.add_argument("output", help="mask PNG to write")
    args = parser.parse_args(argv)

    with Image.open(args.image) as img:                            # grey, RGB or RGBA as they are
        image = np.asarray(img if img.mode in ("L", "RGB", "RGBA") else img.convert("RGBA"))
    with load(args.model) as runner:
        (name, spec), = runner.input_constraints.items()           # one input; its admissible sizes
        x = preprocess(image, in_channels=spec.shape[1])           # 1xCxHxW float32 in [0, 1]
        x, box = align_pad(x.astype(spec.dtype), spec.alignment, min_size=spec.min_size)
        logits = next(iter(runner.infer({name: x}).values()))      # 1xKxHxW
        mask_values = runner.manifest.mask_values if runner.manifest else None  # e.g. [0, 127, 255]
        print(f"{args.image}: {image.shape[1]}x{image.shape[0]} on {runner.name} ({'; '.join(runner.notes)})")
    mask = postprocess(crop(logits, box), image.shape[:2])          # HxW class indices
    out = mask_to_image(mask, mask_values)
    Image.fromarray(out.astype(np.uint8) * 255 if out.dtype == bool else out).save(args.output)  # mode L
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
