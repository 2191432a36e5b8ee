"""Reading images the way milesial/Pytorch-UNet's data loading sees them, shared by predict, calibration
and the bench (a layer below the exporter and the runtime).

:func:`load_image` / :func:`image_to_array` read any mode Pillow opens: EXIF orientation applied
(``ImageOps.exif_transpose``), palette, CMYK, YCbCr, LAB, HSV and 1-bit images converted by Pillow to
RGB / gray, alpha dropped, and 16/32-bit images (``I;16``, ``I``) scaled by their real bit depth to
``[0, 1]`` floats (``/ 255`` would put nearly every pixel above 1), then the model's channel count.
:func:`preprocess` reproduces ``BasicDataset.preprocess`` (bicubic resize by ``scale``, HWC -> CHW,
``/ 255`` when any value exceeds 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError, MissingDependencyError

__all__ = ["load_image", "image_to_array", "convert_channels", "resize", "preprocess"]

def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError("resizing images needs Pillow, which is not installed",
                                     "Pillow (milesial resizes with PIL's bicubic filter)",
                                     "pip install pillow, or pass scale=1.0 with an image already at size") from None
    return Image


def _luma(img: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma of an HxWx3 image: Pillow's ``convert("L")`` for uint8, the same weights otherwise."""
    if img.dtype == np.uint8:
        return np.asarray(_pil().fromarray(np.ascontiguousarray(img)).convert("L"))
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114


#: Modes Pillow converts to RGB for us (palette, print and other colour spaces).
_TO_RGB = {"PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB",
           "RGBX": "RGB", "RGBa": "RGBA", "La": "LA", "1": "L"}


def _bit_depth(img) -> int:
    """Bits per sample of an ``I;16*`` / ``I`` image: 16, also for 32-bit integers holding 16-bit data."""
    if img.mode.startswith("I;16"):
        return 16
    lo, hi = img.getextrema()
    if lo < 0 or hi > 65535:
        raise InputError(f"32-bit integer image with values {lo}..{hi}", "8-bit, 16-bit (0..65535) or float images",
                         "save it as 16-bit PNG/TIFF or as float (mode F)")
    return 16


def image_to_array(img: Any, in_channels: int | None = None) -> np.ndarray:
    """A PIL image of any mode -> HxW / HxWxC array with the model's channels (see the module docstring).

    8-bit modes stay uint8 (``preprocess`` divides by 255); ``I;16``/``I`` become float32 in ``[0, 1]``
    scaled by the bit depth; ``F`` stays float32. Pillow does every colour conversion.

    Raises:
        InputError: a mode or channel count with no unambiguous conversion.
    """
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in _TO_RGB:
        img = img.convert(_TO_RGB[mode])
    if img.mode in ("LA", "RGBA") and in_channels != len(img.mode):
        img = img.convert(img.mode[:-1])  # drop alpha, as milesial's RGB models see it
    if img.mode == "I" or img.mode.startswith("I;16"):
        bits = _bit_depth(img)
        arr = np.asarray(img.convert("F"), dtype=np.float32) / float(2 ** bits - 1)
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
    elif img.mode in ("L", "RGB", "LA", "RGBA"):
        if in_channels == 1 and img.mode == "RGB":
            img = img.convert("L")
        elif in_channels == 3 and img.mode == "L":
            img = img.convert("RGB")
        arr = np.asarray(img)
    else:
        raise InputError(f"image mode {mode!r}", "a mode Pillow converts to gray or RGB (L, RGB, P, CMYK, I;16, ...)",
                         "convert the image to PNG (RGB or gray) first")
    return convert_channels(arr, in_channels)


def load_image(path: Any, in_channels: int | None = None) -> np.ndarray:
    """Read an image file upright (EXIF orientation applied) as :func:`image_to_array` returns it.

    Raises:
        InputError: unreadable file, or a mode / channel count with no conversion.
    """
    image_mod = _pil()
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with image_mod.open(path) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
            return image_to_array(upright if upright is not None else img, in_channels)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read image {path}: {exc}", "a readable image file (png, jpg, tif, ...)",
                         "check the file") from exc


def convert_channels(img: np.ndarray, in_channels: int | None) -> np.ndarray:
    """Give an HxW / HxWxC image the model's channel count where the conversion is unambiguous.

    RGB -> gray uses PIL's ``L`` luma; gray -> RGB repeats the channel; an alpha channel (RGBA,
    LA) is dropped. Returns HxWxC (HxW stays HxW when one channel is wanted).

    Raises:
        InputError: Not an HxW / HxWxC image, or no unambiguous conversion.
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise InputError(f"image of shape {img.shape}", "an HxW or HxWxC image", "pass one image, channels last")
    channels = 1 if img.ndim == 2 else img.shape[2]
    if in_channels is None or channels == in_channels:
        return img
    if channels in (2, 4) and in_channels in (1, 3, channels - 1):  # LA / RGBA: drop alpha first
        img, channels = img[..., :channels - 1], channels - 1
        if channels == 1:
            img = img[..., 0]
        if channels == in_channels:
            return img
    if channels == 3 and in_channels == 1:
        return _luma(img)
    if channels == 1 and in_channels == 3:
        gray = img if img.ndim == 2 else img[..., 0]
        return np.repeat(gray[..., None], 3, axis=2)
    raise InputError(f"image with {channels} channel(s) for a model with {in_channels} input channel(s)",
                     "gray (1), gray+alpha (2), RGB (3) or RGBA (4) converted to 1 or 3 channels, or the model's "
                     f"own {in_channels}", "convert the image yourself to the model's channel count")


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxW / HxWxC image to ``(width, height)`` with PIL's bicubic filter (as milesial).

    uint8 gray/RGB/RGBA go through PIL's own modes; any other dtype is resized per channel as 32-bit
    float (PIL mode ``F``).
    """
    image_mod = _pil()
    img = np.asarray(img)
    if img.dtype == np.uint8 and (img.ndim == 2 or img.shape[2] in (3, 4)):
        return np.asarray(image_mod.fromarray(img).resize(size, resample=image_mod.BICUBIC))
    planes = img[..., None] if img.ndim == 2 else img
    out = [np.asarray(image_mod.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32))
                      .resize(size, resample=image_mod.BICUBIC)) for c in range(planes.shape[2])]
    stacked = np.stack(out, axis=-1)
    return stacked[..., 0] if img.ndim == 2 else stacked


def preprocess(img: Any, scale: float = 1.0, in_channels: int | None = None) -> np.ndarray:
    """Turn an image into the network's ``1xCxHxW`` float32 input, like milesial's ``preprocess``.

    Args:
        img: HxW or HxWxC array (uint8 or float), or a PIL image of any mode (see :func:`image_to_array`).
        scale: Resize factor; the new size is ``int(scale * w) x int(scale * h)`` (bicubic, Pillow).
        in_channels: The model's input channels (conversion as in :func:`convert_channels`);
            ``None`` keeps the image's.

    Returns:
        ``1xCxHxW`` float32, divided by 255 when any value is greater than 1.

    Raises:
        InputError: A scale that leaves no pixel, or no channel conversion.
        MissingDependencyError: ``scale != 1`` without Pillow.
    """
    if hasattr(img, "mode") and hasattr(img, "convert"):  # a PIL image: any mode, like load_image
        img = image_to_array(img, in_channels)
    img = convert_channels(np.asarray(img), in_channels)
    h, w = img.shape[:2]
    new_w, new_h = int(scale * w), int(scale * h)
    if new_w <= 0 or new_h <= 0:
        raise InputError(f"scale {scale} turns the {w}x{h} image into {new_w}x{new_h}", "at least 1x1 pixel",
                         "use a larger scale")
    if (new_w, new_h) != (w, h):
        img = resize(img, (new_w, new_h))
    chw = img[np.newaxis, ...] if img.ndim == 2 else img.transpose((2, 0, 1))
    if (chw > 1).any():
        chw = chw / 255.0
    return np.ascontiguousarray(chw[np.newaxis], dtype=np.float32)
