"""The synthetic data generator, image files through Pillow and the shipped demo model."""

from __future__ import annotations

import hashlib
import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from unetrt.assets import demo_checkpoint, demo_info, demo_model_kwargs, demo_sample_mask, demo_samples
import unetrt.data
from unetrt.data import CLASSES, MASK_VALUES, colour_mask, labels_from_grey, make_dataset, make_sample
from unetrt.data.synthetic import MIN_VISIBLE
from unetrt.errors import DataError
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
    with pytest.raises(DataError, match="8x64 is too small"):
        make_sample(np.random.default_rng(0), 8, 64)


def test_colour_mask_round_trip():
    mask = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    grey = colour_mask(mask)
    assert grey.tolist() == [[0, 127, 255], [255, 127, 0]]
    assert np.array_equal(labels_from_grey(grey), mask)


# --- image files (Pillow) ---------------------------------------------------------------------

def read_image(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img)


def test_no_png_codec_of_our_own():
    assert importlib.util.find_spec("unetrt.data.png") is None
    assert not {"read_png", "write_png", "encode_png", "decode_png", "PNGError"} & set(dir(unetrt.data))


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (97, 143), (6, 9, 2), (97, 143, 3), (3, 5, 4)])
def test_png_round_trip_through_pillow(tmp_path, shape):
    """The modes the demo script and the examples write (L, LA, RGB, RGBA) read back unchanged."""
    arr = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(arr).save(path)
    back = read_image(path)
    assert back.dtype == np.uint8 and np.array_equal(back, arr)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("mask_values, mode", [((0, 127, 255), "L"), ([0, 1], "1"),
                                               ([[0, 0, 0], [255, 0, 0], [0, 0, 255]], "RGB")])
def test_mask_pngs_keep_milesials_modes_and_values(tmp_path, mask_values, mode):
    """Masks go through ``mask_to_image`` + ``Image.fromarray`` as in milesial's predict.py."""
    from unetrt.runtime.transforms import mask_to_image, to_pil_image

    labels = np.random.default_rng(1).integers(0, len(mask_values), (9, 14))
    array = mask_to_image(labels, mask_values)
    image = to_pil_image(array)
    assert image.mode == mode
    image.save(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as back:
        assert back.mode == mode and np.array_equal(np.asarray(back), array)


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
        image = read_image(path)
        assert image.ndim == 3 and image.shape[2] == 3
        shapes.add(image.shape[:2])
        grey = read_image(demo_sample_mask(path))
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
        assert np.array_equal(read_image(path), image)
        assert np.array_equal(labels_from_grey(read_image(demo_sample_mask(path))), mask)
        with Image.open(path) as img, Image.open(demo_sample_mask(path)) as grey:
            assert (img.format, img.mode, grey.format, grey.mode) == ("PNG", "RGB", "PNG", "L")
