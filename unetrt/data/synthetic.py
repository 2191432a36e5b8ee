"""Procedural segmentation data: textured backgrounds with ellipses and polygons.

Every sample is an RGB image (``uint8``, H x W x 3) and an integer label mask (``uint8``,
H x W) with three classes:

* ``0`` background: smooth noise, linear gradients, sinusoidal stripes or plaids blending two
  random colours;
* ``1`` ellipse: discs and rotated ellipses;
* ``2`` polygon: rotated rectangles and triangles.

Object colours are drawn from the same uniform RGB distribution as the background colours
(only kept away from the background's own colours so the object is visible) and the two
object classes share that distribution, so a network must use shape, not colour, to tell the
classes apart. Objects overlap (later ones occlude earlier ones) and may leave the frame;
every sample keeps at least :data:`MIN_VISIBLE` visible pixels of each object class.
Gaussian pixel noise is added last.

Everything is deterministic from the :class:`numpy.random.Generator` (``make_sample``) or the
seed (``make_dataset``: sample ``i`` uses ``numpy.random.default_rng([seed, i])``, so it does
not depend on ``n``).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

#: Class names, indexed by label.
CLASSES = ("background", "ellipse", "polygon")
#: Grey level written to mask PNGs for each label (milesial's ``mask_values``).
MASK_VALUES = (0, 127, 255)
#: Sizes (H and W, inclusive) that :func:`make_dataset` draws from by default.
DEFAULT_SIZE_RANGE = (96, 160)
#: Minimum number of visible pixels of each object class in every sample.
MIN_VISIBLE = 40
#: Radius range of objects in pixels (independent of the image size).
RADIUS_RANGE = (8.0, 24.0)
#: Minimum RGB distance between an object's colour and the background's colours.
MIN_CONTRAST = 70.0

_TAU = 2.0 * np.pi


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return yy + 0.5, xx + 0.5


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Bilinearly interpolated random grid in [0, 1] (value noise) of shape (H, W)."""
    grid = rng.random((cells + 2, cells + 2)).astype(np.float32)
    scale = cells / max(height, width)
    gy = (np.arange(height, dtype=np.float32) + 0.5) * scale
    gx = (np.arange(width, dtype=np.float32) + 0.5) * scale
    y0, x0 = gy.astype(np.int64), gx.astype(np.int64)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    out = (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def _stripes(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6.0, 28.0)
    proj = xx * np.cos(angle) + yy * np.sin(angle)
    return 0.5 + 0.5 * np.sin(_TAU * proj / period + rng.uniform(0, _TAU))


def _background(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray):
    """Return (image float32 H x W x 3, the two base colours)."""
    height, width = yy.shape
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    kind = int(rng.integers(4))
    if kind == 0:  # smooth value noise
        t = _smooth_noise(rng, height, width, int(rng.integers(2, 7)))
    elif kind == 1:  # linear gradient
        angle = rng.uniform(0, _TAU)
        proj = xx * np.cos(angle) + yy * np.sin(angle)
        t = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    elif kind == 2:  # sinusoidal stripes
        t = _stripes(rng, yy, xx)
    else:  # plaid of two stripe sets modulated by noise
        t = 0.5 * (_stripes(rng, yy, xx) + _stripes(rng, yy, xx))
        t = 0.6 * t + 0.4 * _smooth_noise(rng, height, width, int(rng.integers(2, 5)))
    t = t.astype(np.float32)[..., None]
    image = c1.astype(np.float32) * (1 - t) + c2.astype(np.float32) * t
    return image, (c1, c2)


def _distance_to_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-9), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def _object_colour(rng: np.random.Generator, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """A uniform RGB colour at least MIN_CONTRAST away from the background's colour segment."""
    best, best_d = None, -1.0
    for _ in range(32):
        colour = rng.uniform(0, 255, 3)
        d = _distance_to_segment(colour, c1, c2)
        if d >= MIN_CONTRAST:
            return colour
        if d > best_d:
            best, best_d = colour, d
    return best  # pragma: no cover - practically unreachable


def _ellipse(rng, yy, xx, cy, cx, r):
    a, b = r, r * rng.uniform(0.55, 1.0)
    th = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
    v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _rectangle(rng, yy, xx, cy, cx, r):
    a, b = r * rng.uniform(0.7, 1.0), r * rng.uniform(0.5, 1.0)
    th = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
    v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
    return (np.abs(u) <= a) & (np.abs(v) <= b)


def _triangle(rng, yy, xx, cy, cx, r):
    angles = rng.uniform(0, _TAU) + np.array([0.0, _TAU / 3, 2 * _TAU / 3]) + rng.uniform(-0.3, 0.3, 3)
    radii = 1.2 * r * rng.uniform(0.85, 1.15, 3)
    py, px = cy + radii * np.sin(angles), cx + radii * np.cos(angles)
    inside = np.ones(yy.shape, dtype=bool)
    for i in range(3):  # vertices are counter-clockwise in (x, y): keep the left side of each edge
        j = (i + 1) % 3
        cross = (px[j] - px[i]) * (yy - py[i]) - (py[j] - py[i]) * (xx - px[i])
        inside &= cross >= 0
    return inside


def _shape(rng, yy, xx, label: int, interior: bool):
    height, width = yy.shape
    r = rng.uniform(*RADIUS_RANGE)
    if interior:  # fully inside the frame (where it fits)
        cy = rng.uniform(min(r, height / 2), max(height - r, height / 2))
        cx = rng.uniform(min(r, width / 2), max(width - r, width / 2))
    else:  # may leave the frame by up to a third of its size
        cy, cx = rng.uniform(-r / 3, height + r / 3), rng.uniform(-r / 3, width + r / 3)
    if label == 1:
        return _ellipse(rng, yy, xx, cy, cx, r)
    if rng.random() < 0.5:
        return _rectangle(rng, yy, xx, cy, cx, r)
    return _triangle(rng, yy, xx, cy, cx, r)


def _paint(rng, image, mask, shape, label, yy, xx, colours) -> None:
    colour = _object_colour(rng, *colours).astype(np.float32)
    angle = rng.uniform(0, _TAU)
    shade = rng.uniform(-0.5, 0.5) * ((xx * np.cos(angle) + yy * np.sin(angle)) / max(yy.shape))
    fill = colour[None, :] + 40.0 * shade[shape][:, None]  # gentle shading across the object
    image[shape] = fill
    mask[shape] = label


def make_sample(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One image and its label mask.

    Args:
        rng: Source of randomness (the sample is a pure function of its state).
        height: Image height in pixels (>= 32 recommended).
        width: Image width in pixels.

    Returns:
        ``(image, mask)``: ``uint8`` arrays of shapes (H, W, 3) and (H, W); mask values are the
        labels 0 (background), 1 (ellipse) and 2 (polygon).
    """
    height, width = int(height), int(width)
    if height < 16 or width < 16:
        raise DataError(f"synthetic sample size {height}x{width} is too small", "height and width >= 16",
                        "draw a larger sample")
    yy, xx = _grid(height, width)
    image, colours = _background(rng, yy, xx)
    mask = np.zeros((height, width), dtype=np.uint8)
    labels = [1] * int(rng.integers(1, 4)) + [2] * int(rng.integers(1, 4))
    rng.shuffle(labels)
    for label in labels:
        _paint(rng, image, mask, _shape(rng, yy, xx, label, interior=False), label, yy, xx, colours)
    for label in (1, 2):  # top up classes that occlusion or the frame hid
        tries = 0
        while int((mask == label).sum()) < MIN_VISIBLE and tries < 8:
            _paint(rng, image, mask, _shape(rng, yy, xx, label, interior=True), label, yy, xx, colours)
            tries += 1
    image += rng.normal(0.0, rng.uniform(2.0, 10.0), image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


def sample_size(rng: np.random.Generator, size_range: tuple[int, int] = DEFAULT_SIZE_RANGE) -> tuple[int, int]:
    """Independent height and width drawn uniformly from ``size_range`` (inclusive)."""
    lo, hi = int(size_range[0]), int(size_range[1])
    h, w = rng.integers(lo, hi + 1, 2)
    return int(h), int(w)


def make_dataset(n: int, seed: int, size_range: tuple[int, int] = DEFAULT_SIZE_RANGE
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` samples of varied sizes; sample ``i`` is drawn from ``default_rng([seed, i])``.

    Returns:
        A list of ``(image, mask)`` pairs (sizes differ, so they are not stacked).
    """
    out = []
    for i in range(int(n)):
        rng = np.random.default_rng([int(seed), i])
        h, w = sample_size(rng, size_range)
        out.append(make_sample(rng, h, w))
    return out


def colour_mask(mask: np.ndarray, mask_values=MASK_VALUES) -> np.ndarray:
    """Map labels to the grey levels of ``mask_values`` (``uint8``)."""
    lut = np.asarray(mask_values, dtype=np.uint8)
    return lut[mask]


def labels_from_grey(grey: np.ndarray, mask_values=MASK_VALUES) -> np.ndarray:
    """Inverse of :func:`colour_mask`: nearest ``mask_values`` entry for each grey pixel."""
    values = np.asarray(mask_values, dtype=np.int32)
    return np.abs(grey.astype(np.int32)[..., None] - values).argmin(-1).astype(np.uint8)
