"""Grid parsing, image inputs, backend availability and the artifact cache's reuse rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import unetrt
from unetrt.artifacts.refs import ONNX_FP32
from unetrt.bench.artifacts import ArtifactCache, ModelSource
from unetrt.bench.backends import BACKENDS, parse_backends, unavailable_reason
from unetrt.bench.inputs import _cover_crop, image_batch, load_images, parse_batches, parse_sizes, random_batch
from unetrt.errors import InputError, UnetrtError
from unetrt.models import create_model

SAMPLES = Path(unetrt.__file__).parent / "assets" / "samples"


def test_parse_sizes_and_batches():
    assert parse_sizes("256, 512x384,256") == [(256, 256), (512, 384)]
    assert parse_sizes([64, (32, 48)]) == [(64, 64), (32, 48)]
    assert parse_batches("1,4,1") == [1, 4]
    for bad in ("", "0", "-16", "16x", "x16", "a"):
        with pytest.raises(UnetrtError):
            parse_sizes(bad)
    for bad in ("", "0", "-1", "two", "1.5"):
        with pytest.raises(UnetrtError):
            parse_batches(bad)


def test_parse_backends_keeps_order_and_lists_valid_names():
    assert parse_backends("ort, eager,ort") == ["ort", "eager"]
    with pytest.raises(UnetrtError) as err:
        parse_backends("ort,foo")
    assert "'foo'" in str(err.value) and all(name in str(err.value) for name in BACKENDS)


def test_availability_on_this_machine():
    assert unavailable_reason(BACKENDS["eager"], cuda=False) is None
    assert unavailable_reason(BACKENDS["ort"], cuda=False) is None
    assert "CUDA" in unavailable_reason(BACKENDS["eager-fp16"], cuda=False)
    assert "CUDA GPU" in unavailable_reason(BACKENDS["trt"], cuda=False)
    assert "--device cpu" in unavailable_reason(BACKENDS["ort-cuda"], cuda=True, device="cpu")
    assert "--device cuda" in unavailable_reason(BACKENDS["ort"], cuda=True, device="cuda")


def test_random_inputs_are_seeded():
    a, b = random_batch((2, 3, 8, 8), 1), random_batch((2, 3, 8, 8), 1)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, random_batch((2, 3, 8, 8), 2))


def test_image_batches_are_preprocessed_and_cropped_to_the_grid_size():
    images = load_images(SAMPLES)
    assert len(images) == 4  # *_mask.png files are not inputs
    batch = image_batch(images, (5, 3, 40, 24))
    assert batch.shape == (5, 3, 40, 24) and batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0 and batch.std() > 0.01
    assert np.array_equal(batch[0], batch[4])  # images repeat cyclically
    gray = image_batch(images, (1, 1, 16, 16))
    assert gray.shape == (1, 1, 16, 16)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_cover_crop_keeps_the_centred_window_of_the_grid_aspect(dtype):
    """A 40x80 image for a 16x16 grid: the centre 40x40 (one colour) survives, the sides do not (bicubic
    support reaches one source pixel or two past the crop, so the outer output columns blend a little)."""
    img = np.zeros((40, 80, 3), dtype)
    img[:, :20], img[:, 20:60], img[:, 60:] = (200, 0, 0), (0, 150, 0), (0, 0, 100)
    out = _cover_crop(img, 16, 16)
    assert out.shape == (16, 16, 3) and out.dtype == (np.uint8 if dtype == np.uint8 else np.float32)
    assert np.allclose(out[:, 2:-2].astype(np.float64), [0, 150, 0], atol=1e-3)
    assert np.abs(out.astype(np.float64) - [0, 150, 0]).max() < 20
    tall = _cover_crop(img[:, :20, 0], 10, 4)  # grey, taller than wide: crop rows, keep every column
    assert tall.shape == (10, 4) and np.allclose(tall.astype(np.float64), 200, atol=1e-3)
    assert _cover_crop(img, 40, 80) is img


def test_unreadable_image_is_one_input_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(InputError, match="cannot read image .*a.png"):
        load_images(tmp_path)


@pytest.mark.slow
def test_artifact_cache_reuses_pins_weights_and_rebuilds_on_change(tmp_path):
    source = ModelSource("milesial", None, {"width": 2})
    shapes = [(1, 3, 32, 32)]
    cache = ArtifactCache(tmp_path, source, shapes)
    torch.manual_seed(0)
    model = create_model("milesial", width=2)
    weights = cache.use_weights_of(model)
    assert weights.is_file()
    first = cache.prepare({ONNX_FP32})[ONNX_FP32]
    assert not first.reused and first.path.is_file()
    assert first.manifest.model.checkpoint.path == str(weights.resolve())

    other = create_model("milesial", width=2)  # fresh random weights: pinned ones are loaded into it
    again = ArtifactCache(tmp_path, source, shapes)
    again.use_weights_of(other)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    second = again.prepare({ONNX_FP32})[ONNX_FP32]
    assert second.reused and second.path == first.path

    first.path.write_bytes(first.path.read_bytes() + b"\0")  # a changed file no longer matches its manifest
    assert again._find(ONNX_FP32) is None
    manifest = json.loads((first.path.parent / "manifest.json").read_text())
    assert ArtifactCache(tmp_path, ModelSource("milesial", None, {"width": 3}), shapes).root != again.root
    assert manifest["model"]["kwargs"]["width"] == 2
