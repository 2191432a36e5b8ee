"""Pre/post-processing against hand-computed values and milesial/Pytorch-UNet's behaviour."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from unetrt.errors import InputError, MissingDependencyError
from unetrt.runtime.transforms import (CropBox, align_pad, convert_channels, crop, mask_to_image, postprocess,
                                       preprocess)


def test_preprocess_gray_uint8_adds_channel_and_divides():
    img = np.array([[0, 51], [255, 102]], dtype=np.uint8)
    x = preprocess(img)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, 0], np.float32(np.array([[0, 51], [255, 102]]) / 255.0))


def test_preprocess_rgb_is_chw_in_order():
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 51, 0
    x = preprocess(img)
    assert x.shape == (1, 3, 2, 3)
    np.testing.assert_array_equal(x[0, :, 0, 0], np.float32([1.0, 0.2, 0.0]))


def test_preprocess_divides_only_when_a_value_exceeds_one():
    binary = np.array([[0, 1], [1, 0]], np.uint8)  # milesial: (img > 1).any() is False -> kept as 0/1
    np.testing.assert_array_equal(preprocess(binary)[0, 0], binary.astype(np.float32))
    floats = np.array([[0.25, 1.0]], np.float64)
    np.testing.assert_array_equal(preprocess(floats)[0, 0], np.float32([[0.25, 1.0]]))


def test_rgb_to_gray_is_pil_luma():
    img = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]]], np.uint8)
    # PIL "L": (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 -> 76, 150, 29, 255, 18
    np.testing.assert_array_equal(convert_channels(img, 1), np.array([[76, 150, 29, 255, 18]], np.uint8))
    assert preprocess(img, in_channels=1).shape == (1, 1, 1, 5)


def test_channel_conversions():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rgb = convert_channels(gray, 3)
    assert rgb.shape == (2, 3, 3) and all(np.array_equal(rgb[..., i], gray) for i in range(3))
    rgba = np.dstack([rgb, np.full((2, 3), 7, np.uint8)])
    np.testing.assert_array_equal(convert_channels(rgba, 3), rgb)
    np.testing.assert_array_equal(convert_channels(np.dstack([gray, gray]), 1), gray)  # LA -> L
    float_rgb = np.ones((2, 2, 3)) * [0.5, 0.25, 1.0]
    np.testing.assert_allclose(convert_channels(float_rgb, 1), 0.299 * 0.5 + 0.587 * 0.25 + 0.114)
    with pytest.raises(InputError, match="5 channel"):
        convert_channels(np.zeros((2, 2, 5), np.uint8), 3)
    with pytest.raises(InputError, match="HxW or HxWxC"):
        convert_channels(np.zeros((1, 2, 2, 3), np.uint8), 3)


def test_resize_without_pillow_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(MissingDependencyError, match="pillow"):
        preprocess(np.zeros((8, 8), np.uint8), scale=0.5)
    assert preprocess(np.zeros((8, 8), np.uint8), scale=1.0).shape == (1, 1, 8, 8)  # no resize, no Pillow


def test_scale_that_leaves_no_pixel():
    with pytest.raises(InputError, match="scale 0.01"):
        preprocess(np.zeros((8, 8), np.uint8), scale=0.01)


def _milesial_preprocess(pil_img, scale):
    """milesial's BasicDataset.preprocess (image branch) + predict_img's tensor conversion."""
    from PIL import Image

    w, h = pil_img.size
    new_w, new_h = int(scale * w), int(scale * h)
    img = np.asarray(pil_img.resize((new_w, new_h), resample=Image.BICUBIC))
    img = img[np.newaxis, ...] if img.ndim == 2 else img.transpose((2, 0, 1))
    if (img > 1).any():
        img = img / 255.0
    return torch.from_numpy(img).unsqueeze(0).to(dtype=torch.float32).numpy()


@pytest.mark.parametrize("scale", [0.5, 0.37, 1.0, 1.5])
@pytest.mark.parametrize("channels", [1, 3])
def test_preprocess_matches_milesial_with_pillow(scale, channels):
    image_mod = pytest.importorskip("PIL.Image")
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    img = img[..., 0] if channels == 1 else img
    np.testing.assert_array_equal(preprocess(img, scale), _milesial_preprocess(image_mod.fromarray(img), scale))


def test_align_pad_round_trip():
    x = np.random.default_rng(0).random((1, 3, 20, 33), dtype=np.float32)
    padded, box = align_pad(x, 16)
    assert padded.shape == (1, 3, 32, 48) and box == CropBox(0, 0, 20, 33)
    np.testing.assert_array_equal(crop(padded, box), x)
    np.testing.assert_array_equal(padded[..., 20:, :33], np.repeat(x[..., 19:20, :], 12, axis=2))  # replicate
    reflect, _ = align_pad(x, 16, "reflect")
    np.testing.assert_array_equal(reflect[..., 20, :33], x[..., 18, :])
    const, _ = align_pad(x, 16, "constant", value=-1.0)
    assert np.all(const[..., 20:, :] == -1.0) and np.all(const[..., 33:] == -1.0)
    same, box = align_pad(np.zeros((1, 1, 32, 48), np.float32), 16)
    assert same.shape == (1, 1, 32, 48) and box == CropBox(0, 0, 32, 48)


def test_align_pad_min_size_and_errors():
    padded, box = align_pad(np.zeros((1, 1, 5, 40)), 1, min_size=16)
    assert padded.shape == (1, 1, 16, 40) and box.height == 5
    assert align_pad(np.zeros((1, 1, 5, 40)), 16, min_size=20)[0].shape == (1, 1, 32, 48)
    with pytest.raises(InputError, match="pad mode"):
        align_pad(np.zeros((1, 1, 5, 5)), 16, "wrap")
    with pytest.raises(InputError):
        align_pad(np.zeros((1, 1, 5, 5)), 0)


def test_postprocess_argmax_and_bilinear_resize():
    # class 1 logits [0, 1] along W, class 0 constant 0.4; bilinear 2 -> 4 (align_corners False)
    # gives [0, .25, .75, 1] per row, so the argmax is class 1 from the third column on.
    logits = np.zeros((1, 2, 2, 2), np.float32)
    logits[0, 0] = 0.4
    logits[0, 1] = [[0, 1], [0, 1]]
    mask = postprocess(logits, (4, 4))
    assert mask.dtype == np.int64 and mask.shape == (4, 4)
    np.testing.assert_array_equal(mask, [[0, 0, 1, 1]] * 4)


def test_postprocess_single_class_sigmoid_threshold():
    logits = np.array([[[[-1.0, 0.0], [0.5, 3.0]]]], np.float32)  # sigmoid: .27 .5 .62 .95
    np.testing.assert_array_equal(postprocess(logits, (2, 2)), [[0, 0], [1, 1]])
    np.testing.assert_array_equal(postprocess(logits, (2, 2), mask_threshold=0.9), [[0, 0], [0, 1]])
    np.testing.assert_array_equal(postprocess(torch.from_numpy(logits[0]), (2, 2)), [[0, 0], [1, 1]])
    with pytest.raises(InputError):
        postprocess(np.zeros((2, 1, 2, 2)), (2, 2))


def test_postprocess_matches_milesial_predict():
    import torch.nn.functional as F

    logits = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 3, 9, 13)).astype(np.float32))
    expected = F.interpolate(logits, (20, 27), mode="bilinear").argmax(dim=1)[0].long().squeeze().numpy()
    np.testing.assert_array_equal(postprocess(logits.numpy(), (20, 27)), expected)


MASK = np.array([[0, 1], [2, 1]])


def test_mask_to_image_int_values():
    out = mask_to_image(MASK, [0, 127, 255])
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 127], [255, 127]])


def test_mask_to_image_binary_is_bool_like_milesial():
    binary = np.array([[0, 1], [1, 0]])
    for values in ([0, 1], [False, True], None):  # [False, True] == [0, 1] in milesial's check too
        out = mask_to_image(binary, values)
        assert out.dtype == np.bool_
        np.testing.assert_array_equal(out, binary.astype(bool))
    assert mask_to_image(binary, [0, 255]).dtype == np.uint8


def test_mask_to_image_rgb_values_and_scores():
    colours = [[0, 0, 0], [255, 0, 0], [0, 0, 255]]
    out = mask_to_image(MASK, colours)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1, 0], [0, 0, 255])
    np.testing.assert_array_equal(out[0, 1], [255, 0, 0])
    scores = np.eye(3)[MASK].transpose(2, 0, 1)  # KxHxW one-hot: argmax over axis 0
    np.testing.assert_array_equal(mask_to_image(scores, colours), out)


# --- reading images of every mode (issue 10: 16-bit, palette, CMYK, LA, I, F, 1, EXIF) -----------------

def _save(tmp_path, img, name, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return path


def test_16bit_png_scaled_by_its_bit_depth(tmp_path):
    from PIL import Image

    from unetrt.runtime.transforms import load_image

    gray8 = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))              # 8x64 ramp
    path = _save(tmp_path, Image.fromarray(gray8.astype(np.uint16) * 257), "g16.png")
    assert Image.open(path).mode == "I;16"
    arr = load_image(path, in_channels=3)
    assert arr.shape == (8, 64, 3) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[..., 0], gray8 / 255.0, atol=1e-6)         # same as the 8-bit picture
    x16 = preprocess(arr)
    x8 = preprocess(load_image(_save(tmp_path, Image.fromarray(gray8), "g8.png"), in_channels=3))
    np.testing.assert_allclose(x16, x8, atol=1e-6)


def test_palette_cmyk_la_and_one_bit_become_model_channels(tmp_path):
    from PIL import Image

    from unetrt.runtime.transforms import load_image

    pal = Image.new("P", (4, 2))
    pal.putpalette([0, 0, 0, 200, 10, 30])
    pal.putpixel((1, 0), 1)
    rgb = load_image(_save(tmp_path, pal, "p.png"), in_channels=3)
    assert rgb.shape == (2, 4, 3) and rgb[0, 1].tolist() == [200, 10, 30] and rgb[0, 0].tolist() == [0, 0, 0]
    cmyk = Image.new("CMYK", (4, 2), (0, 255, 255, 0))                        # pure red in print colours
    assert load_image(_save(tmp_path, cmyk, "c.tif"), in_channels=3)[0, 0].tolist() == [255, 0, 0]
    assert load_image(_save(tmp_path, cmyk, "c.jpg", quality=100), in_channels=3)[0, 0, 0] > 240
    la = Image.new("LA", (4, 2), (100, 7))
    assert load_image(_save(tmp_path, la, "la.png"), in_channels=3)[0, 0].tolist() == [100, 100, 100]
    assert load_image(tmp_path / "la.png", in_channels=1).shape == (2, 4)
    one = Image.new("1", (4, 2), 1)
    assert load_image(_save(tmp_path, one, "b.png"), in_channels=1).tolist() == [[255] * 4] * 2
    assert load_image(tmp_path / "p.png", in_channels=1)[0, 1] == Image.new("RGB", (1, 1), (200, 10, 30)).convert(
        "L").getpixel((0, 0))


def test_int32_and_float_tiffs(tmp_path):
    from PIL import Image

    from unetrt.runtime.transforms import load_image

    ramp = np.linspace(0, 1, 16, dtype=np.float32).reshape(2, 8)
    f = load_image(_save(tmp_path, Image.fromarray(ramp), "f.tif"), in_channels=1)
    np.testing.assert_allclose(f, ramp)
    i16 = (ramp * 65535).round().astype(np.int32)
    got = load_image(_save(tmp_path, Image.fromarray(i16), "i.tif"), in_channels=1)   # mode I holding 16-bit data
    assert Image.open(tmp_path / "i.tif").mode == "I"
    np.testing.assert_allclose(got, i16 / 65535, rtol=1e-6)
    with pytest.raises(InputError, match="32-bit integer image with values 70000..70000"):
        load_image(_save(tmp_path, Image.fromarray(np.full((2, 2), 70000, np.int32)), "big.tif"))
    with pytest.raises(InputError, match="image with 3 channel"):
        load_image(_save(tmp_path, Image.new("RGB", (4, 4)), "rgb.png"), in_channels=2)


def test_exif_orientation_is_applied(tmp_path):
    from PIL import Image

    from unetrt.runtime.transforms import load_image

    img = Image.new("RGB", (6, 2), (0, 0, 0))
    img.putpixel((0, 0), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = 6                                                          # rotate 90° CW to view
    path = _save(tmp_path, img, "rot.jpg", exif=exif, quality=100)
    arr = load_image(path, in_channels=3)
    assert arr.shape == (6, 2, 3)                                             # upright: 2 wide, 6 tall
    assert arr[0, 1].min() > 200 and arr[0, 0].max() < 60                     # the white corner moved to top-right


def test_unreadable_image_is_one_line(tmp_path):
    from unetrt.runtime.transforms import load_image

    bad = tmp_path / "x.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read image"):
        load_image(bad)
