"""Segment one PNG with a model exported by ``unet-export`` and write the mask as a PNG.

The export directory is opened with ``unetrt.runtime.load``: its TensorRT engine on a CUDA GPU
(when TensorRT is installed), else the ONNX model on ONNX Runtime. Pre/post-processing is
milesial's (``/255``, argmax over classes, grey levels = the manifest's ``mask_values``).

Usage: python examples/python/segment.py export/milesial image.png mask.png
(``export/milesial`` is where ``unet-export`` writes by default; the README's demo uses ``-o export/demo``.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from unetrt.errors import UnetrtError
from unetrt.runtime import align_pad, crop, load, mask_to_image, postprocess, preprocess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Segment an image with an exported unetrt model.",
                                     epilog="example: %(prog)s export/milesial image.png mask.png")
    parser.add_argument("model", help="export directory written by unet-export (manifest.json + model files), "
                                      "e.g. export/milesial")
    parser.add_argument("image", help="input PNG (grey, RGB or RGBA)")
    parser.add_argument("output", help="mask PNG to write")
    args = parser.parse_args(argv)
    try:
        return segment(args.model, args.image, args.output)
    except (UnetrtError, OSError) as exc:  # a missing export or image, an unwritable output: one line
        text = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"error: {text}", file=sys.stderr)
        return 1


def segment(model: str, image_path: str, output: str) -> int:
    """Segment ``image_path`` with the export in ``model`` and write the mask to ``output``."""
    if not Path(model, "manifest.json").is_file():
        raise UnetrtError(f"no export in {model} (no manifest.json)", "a directory written by unet-export",
                          "run unet-export first (it writes export/milesial by default) or pass its -o directory")
    with Image.open(image_path) as img:                            # grey, RGB or RGBA as they are
        image = np.asarray(img if img.mode in ("L", "RGB", "RGBA") else img.convert("RGBA"))
    with load(model) as runner:
        (name, spec), = runner.input_constraints.items()           # one input; its admissible sizes
        x = preprocess(image, in_channels=spec.shape[1])           # 1xCxHxW float32 in [0, 1]
        x, box = align_pad(x.astype(spec.dtype), spec.alignment, min_size=spec.min_size)
        logits = next(iter(runner.infer({name: x}).values()))      # 1xKxHxW
        mask_values = runner.manifest.mask_values if runner.manifest else None  # e.g. [0, 127, 255]
        print(f"{image_path}: {image.shape[1]}x{image.shape[0]} on {runner.name} ({'; '.join(runner.notes)})")
    mask = postprocess(crop(logits, box), image.shape[:2])          # HxW class indices
    out = mask_to_image(mask, mask_values)
    Image.fromarray(out.astype(np.uint8) * 255 if out.dtype == bool else out).save(output)  # mode L
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
