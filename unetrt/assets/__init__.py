"""The demo model shipped with unetrt: a small trained milesial UNet and sample images.

``milesial_demo.pth`` is a milesial/Pytorch-UNet checkpoint (state dict + ``mask_values``)
of ``create_model("milesial", **demo_info()["model"]["kwargs"])`` trained by
``scripts/train_demo.py`` on procedural shapes (:mod:`unetrt.data.synthetic`): class 1 =
discs/ellipses, class 2 = rectangles/triangles. ``demo_training.json`` records how it was
trained and its validation Dice; ``samples/`` holds held-out images and their masks.

Example::

    from unetrt.assets import demo_checkpoint, demo_info, demo_samples
    from unetrt.models import create_model, load_state_dict_into

    model = create_model("milesial", **demo_info()["model"]["kwargs"]).eval()
    meta = load_state_dict_into(model, demo_checkpoint())   # meta["mask_values"] == [0, 127, 255]
    images = demo_samples()                                 # [.../sample_0.png, ...]
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import DataError

CHECKPOINT = "milesial_demo.pth"
RECORD = "demo_training.json"
SAMPLES = "samples"
MODEL_NAME = "milesial"


def _path(*parts: str) -> Path:
    """Filesystem path of a packaged asset (the package is installed as plain files)."""
    ref = resources.files(__name__).joinpath(*parts)
    path = Path(str(ref))
    if not path.exists():
        raise DataError(f"unetrt asset {'/'.join(parts)!r} is missing (looked at {path})",
                        "the files shipped with the package",
                        "reinstall unetrt or regenerate them with: python scripts/train_demo.py")
    return path


def demo_checkpoint() -> Path:
    """Path of the demo checkpoint (milesial format: state dict + ``mask_values``)."""
    return _path(CHECKPOINT)


def demo_samples() -> list[Path]:
    """Paths of the sample images (sorted), without their ``*_mask.png`` ground truth."""
    folder = _path(SAMPLES)
    return sorted(p for p in folder.glob("*.png") if not p.stem.endswith("_mask"))


def demo_sample_mask(image: str | Path) -> Path:
    """Ground-truth mask of a sample image (grey levels = ``mask_values``)."""
    image = Path(image)
    return image.with_name(f"{image.stem}_mask.png")


@lru_cache(maxsize=1)
def _record() -> str:
    return _path(RECORD).read_text(encoding="utf-8")


def demo_info() -> dict[str, Any]:
    """The training record (a fresh dict): model kwargs, data recipe, steps, time, validation Dice."""
    return json.loads(_record())


def demo_model_kwargs() -> dict[str, Any]:
    """Keyword arguments of ``create_model("milesial", ...)`` matching the demo checkpoint."""
    return dict(demo_info()["model"]["kwargs"])


__all__ = ["MODEL_NAME", "demo_checkpoint", "demo_samples", "demo_sample_mask", "demo_info",
           "demo_model_kwargs"]
