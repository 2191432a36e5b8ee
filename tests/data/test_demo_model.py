"""The synthetic data generator, the PNG codec and the shipped demo model."""

from __future__ import annotations

import hashlib
import struct
import zlib

import numpy as np
import pytest
import torch

from unetrt.assets import demo_checkpoint, demo_info, demo_model_kwargs, demo_sample_mask, demo_samples
from unetrt.data import (CLASSES, MASK_VALUES, PNGError, colour_mask, decode_png, encode_png,
                         labels_from_grey, make_dataset, make_sample, read_png, write_png)
from unetrt.data.synthetic import MIN_VISIBLE
from unetrt.models import apply_checkpoint, create_model, load_checkpoint


# --- synthetic data ---------------------------------------------------------------------------

def test_generator_is_deterministic_and_seed_dependent():
    a = make_dataset(4, seed=7, size_range=(96, 160))
    b = make_dataset(4, seed=7, size_range=(96, 160))
    c = make_dataset(4, seed=8, size_range=(96, 160))
    for (ia, ma), (ib, mb) in zip(a, b):
        assert np.array_equal(ia, ib) and np.array_equal(ma, mb)
    assert not all(ia.shape == ic.shape and np.array_equal(ia, ic) for (ia, _), (ic, _) in zip(a, c))
    # sample i does not depend on n
    first = make_dataset(2, seed=7)[1]
    assert np.array_equal(first[0], a[1][0])
    x1 = make_sample(np.random.default_rng(3), 101, 133)
    x2 = make_sample(np.random.default_rng(3), 101, 133)
    assert np.array_equal(x1[0], x2[0]) and np.array_equal(x1[1], x2[1])


def test_generator_shapes_and_classes():
    sizes = set()
    for image, mask in make_dataset(24, seed=123, size_range=(96, 160)):
        h, w = mask.shape
        sizes.add((h, w))
        assert 96 <= h <= 160 and 96 <= w <= 160
        assert image.shape == (h, w, 3) and image.dtype == np.uint8 and mask.dtype == np.uint8
        assert set(np.unique(mask)) == {0, 1, 2}
        for label in (1, 2):
            assert int((mask == label).sum()) >= MIN_VISIBLE
        assert image.std() > 5  # textured, not flat
    assert len(sizes) > 10 and any(h != w for h, w in sizes) and any(h % 2 or w % 2 for h, w in sizes)
    assert CLASSES == ("background", "ellipse", "polygon") and MASK_VALUES == (0, 127, 255)


def test_generator_colours_do_not_reveal_the_class():
    """Object colours share one distribution: the mean colour of each class is about the same."""
    means = {1: [], 2: []}
    for image, mask in make_dataset(150, seed=5, size_range=(96, 112)):
        for label in (1, 2):
            means[label].append(image[mask == label].mean(0))
    m1, m2 = np.mean(means[1], 0), np.mean(means[2], 0)
    assert np.abs(m1 - m2).max() < 25


def test_small_sizes_rejected():
    with pytest.raises(ValueError):
        make_sample(np.random.default_rng(0), 8, 64)


def test_colour_mask_round_trip():
    mask = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    grey = colour_mask(mask)
    assert grey.tolist() == [[0, 127, 255], [255, 127, 0]]
    assert np.array_equal(labels_from_grey(grey), mask)


# --- PNG codec --------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (97, 143), (5, 4, 1), (6, 9, 2), (97, 143, 3), (3, 5, 4)])
def test_png_round_trip(tmp_path, shape):
    arr = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "x.png"
    write_png(path, arr)
    back = read_png(path)
    expected = arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr
    assert back.dtype == np.uint8 and np.array_equal(back, expected)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filtered_png(arr: np.ndarray, ctype: int, filters: list[int], depth: int = 8) -> bytes:
    """Reference encoder applying the given scanline filter to each row (slow, tiny images)."""
    h, w = arr.shape[:2]
    bpp = (arr.shape[2] if arr.ndim == 3 else 1) * depth // 8
    rows = arr.reshape(h, -1).astype(np.int64)
    if depth == 16:
        wide = np.zeros((h, rows.shape[1] * 2), np.int64)
        wide[:, 0::2], wide[:, 1::2] = rows, 255 - rows
        rows = wide
    out = bytearray()
    prev = np.zeros(rows.shape[1], np.int64)
    for y in range(h):
        kind, line = filters[y % len(filters)], rows[y]
        enc = []
        for i, v in enumerate(line):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            enc.append((v - pred) % 256)
        out.append(kind)
        out.extend(bytes(enc))
        prev = line
    header = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(bytes(out)))
            + _chunk(b"IEND", b""))


@pytest.mark.parametrize("channels,ctype", [(None, 0), (3, 2), (4, 6)])
def test_png_decoder_handles_all_filters(channels, ctype):
    rng = np.random.default_rng(1)
    shape = (10, 9) if channels is None else (10, 9, channels)
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    arr[3:6] = arr[2]  # smooth rows exercise the predictors too
    assert np.array_equal(decode_png(_filtered_png(arr, ctype, [0, 1, 2, 3, 4])), arr)
    assert np.array_equal(decode_png(_filtered_png(arr, ctype, [4, 3, 2, 1, 0], depth=16)), arr)


def test_png_errors():
    with pytest.raises(PNGError):
        decode_png(b"not a png at all")
    good = encode_png(np.zeros((4, 4), np.uint8))
    bad = bytearray(good)
    bad[30] ^= 0xFF  # inside IHDR/IDAT: CRC mismatch
    with pytest.raises(PNGError):
        decode_png(bytes(bad))
    with pytest.raises(PNGError):
        encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(PNGError):
        encode_png(np.zeros((4, 4, 5), np.uint8))


# --- the shipped demo model -------------------------------------------------------------------

def _dice_foreground(pred: np.ndarray, gt: np.ndarray) -> tuple[float, dict[int, float]]:
    per = {}
    for c in (1, 2):
        p, g = pred == c, gt == c
        total = int(p.sum() + g.sum())
        per[c] = 1.0 if total == 0 else 2.0 * int((p & g).sum()) / total
    return float(np.mean(list(per.values()))), per


@pytest.fixture(scope="module")
def demo_model():
    info = demo_info()
    state, meta = load_checkpoint(demo_checkpoint())
    model = create_model(info["model"]["arch"], **info["model"]["kwargs"])
    apply_checkpoint(model, state)
    return model.eval(), meta


def test_record_describes_the_checkpoint():
    info = demo_info()
    assert info["model"]["arch"] == "milesial"
    kwargs = demo_model_kwargs()
    assert kwargs["num_classes"] == len(info["classes"]) == len(info["mask_values"]) == 3
    assert kwargs["width"] <= 16
    blob = demo_checkpoint().read_bytes()
    assert info["checkpoint"]["sha256"] == hashlib.sha256(blob).hexdigest()
    assert info["checkpoint"]["bytes"] == len(blob) < 5_000_000
    assert info["validation"]["dice_mean_foreground"] >= 0.9
    assert info["training"]["steps"] > 0 and info["training"]["command"].startswith("python scripts/train_demo.py")
    total = sum(p.stat().st_size for p in demo_checkpoint().parent.rglob("*") if p.is_file())
    assert total < 5_000_000


def test_checkpoint_is_milesial_format_and_weights_only():
    raw = torch.load(demo_checkpoint(), map_location="cpu", weights_only=True)
    assert list(raw["mask_values"]) == [0, 127, 255]
    assert "inc.double_conv.0.weight" in raw and "outc.conv.bias" in raw
    state, meta = load_checkpoint(demo_checkpoint())
    assert meta["format"] == "milesial" and list(meta["mask_values"]) == list(MASK_VALUES)
    assert "mask_values" not in state


def test_demo_model_segments_the_samples(demo_model):
    model, meta = demo_model
    samples = demo_samples()
    assert 3 <= len(samples) <= 4
    shapes = set()
    for path in samples:
        image = read_png(path)
        assert image.ndim == 3 and image.shape[2] == 3
        shapes.add(image.shape[:2])
        grey = read_png(demo_sample_mask(path))
        assert grey.shape == image.shape[:2] and set(np.unique(grey)) <= set(meta["mask_values"])
        gt = labels_from_grey(grey, meta["mask_values"])
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            logits = model(x)
        assert logits.shape == (1, 3, *image.shape[:2])
        pred = logits.argmax(1)[0].numpy()
        dice, per = _dice_foreground(pred, gt)
        assert dice >= 0.9, (path.name, per)
        assert min(per.values()) >= 0.8, (path.name, per)
    assert any(h != w for h, w in shapes) and any(h % 2 or w % 2 for h, w in shapes)


def test_samples_are_reproducible_from_the_record():
    info = demo_info()
    for entry, path in zip(info["data"]["samples"], demo_samples()):
        image, mask = make_sample(np.random.default_rng(entry["seed"]), entry["height"], entry["width"])
        assert np.array_equal(read_png(path), image)
        assert np.array_equal(labels_from_grey(read_png(demo_sample_mask(path))), mask)
