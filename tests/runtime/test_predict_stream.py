"""The streaming pipeline (runtime/stream.py) gives the masks of the image-by-image path, bit for bit."""

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from unetrt.assets import demo_checkpoint, demo_samples
from unetrt.exporter import ExportConfig, export
from unetrt.models import load_checkpoint
from unetrt.runtime import load
from unetrt.runtime.masks import logits_to_mask, resize_bilinear
from unetrt.runtime.predict import _infer_aligned
from unetrt.runtime.stream import MaskWriter, Segmenter, iter_predictions, predict_many
from unetrt.runtime.transforms import load_image, mask_to_image, preprocess


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "export"
    export(ExportConfig(arch="milesial", model_kwargs={"num_classes": 3, "width": 8}, checkpoint=str(demo_checkpoint()),
                        output_dir=str(out), verify=False, engine=False))
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The demo samples plus generated images of mixed sizes (odd, non-square, one gray, repeated sizes)."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for s in demo_samples():
        paths.append(folder / s.name)
        paths[-1].write_bytes(s.read_bytes())
    rng = np.random.default_rng(0)
    base = np.asarray(Image.open(demo_samples()[0]).convert("RGB"))
    for i, (h, w) in enumerate([(64, 64), (97, 143), (64, 64), (50, 70), (97, 143), (64, 64), (33, 200)]):
        img = np.asarray(Image.fromarray(base).resize((w, h), Image.BICUBIC)).astype(np.int16)
        img = np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
        p = folder / f"gen_{i}.png"
        Image.fromarray(img if i != 3 else img[..., 0]).save(p)
        paths.append(p)
    return paths


def _torch_reference(runner, path, scale):
    """The image-by-image path as it was: one infer per image, torch bilinear resize and argmax."""
    name, c = next(iter(runner.input_constraints.items()))
    img = load_image(path, 3)
    x = preprocess(img, scale, 3)
    logits, _ = _infer_aligned(runner, name, c, x, "replicate")
    t = F.interpolate(torch.from_numpy(np.asarray(logits, np.float32)), img.shape[:2], mode="bilinear")
    return t.argmax(dim=1)[0].long().numpy()


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_stream_masks_identical_to_image_by_image(demo, images, tmp_path, scale):
    values = load_checkpoint(demo_checkpoint())[1]["mask_values"]
    targets = [tmp_path / f"{p.stem}_OUT.png" for p in images]
    with load(demo, backend="ort") as runner:
        results = predict_many(runner, images, targets, batch=3, readers=2, writers=2, scale=scale,
                               mask_values=values, keep_arrays=True)
        refs = [_torch_reference(runner, p, scale) for p in images]
    assert [r.status for r in results] == ["ok"] * len(images)
    assert any(r.mode.startswith("batched") for r in results)
    for p, t, r, ref in zip(images, targets, results, refs):
        assert np.array_equal(r.mask, ref), p.name
        assert np.array_equal(np.asarray(Image.open(t)), mask_to_image(ref, values)), p.name
        assert r.class_pixels == np.bincount(ref.ravel(), minlength=3).tolist()
        assert r.size == ref.shape


def test_numpy_bilinear_matches_torch_when_upsampling():
    rng = np.random.default_rng(3)
    for h, w, H, W in [(64, 71, 128, 143), (48, 48, 97, 143), (13, 17, 200, 90), (32, 32, 32, 32)]:
        x = rng.standard_normal((3, h, w)).astype(np.float32)
        ref = F.interpolate(torch.from_numpy(x)[None], (H, W), mode="bilinear")[0].numpy()
        np.testing.assert_array_equal(resize_bilinear(x, (H, W)), ref)
        np.testing.assert_array_equal(logits_to_mask(x, (H, W)), ref.argmax(0))
    one = rng.standard_normal((1, 20, 30)).astype(np.float32)
    ref = (torch.sigmoid(F.interpolate(torch.from_numpy(one)[None], (40, 60), mode="bilinear")) > 0.3)[0, 0].numpy()
    np.testing.assert_array_equal(logits_to_mask(one, (40, 60), 0.3), ref)


def test_segmenter_is_a_pure_batch_callable(demo, images):
    arrays = [load_image(p, 3) for p in images[:6]]
    with load(demo, backend="ort") as runner:
        preds = Segmenter(runner)(arrays)
        refs = [_torch_reference(runner, p, 1.0) for p in images[:6]]
    for pred, ref in zip(preds, refs):
        assert np.array_equal(pred.mask, ref)


def test_unreadable_file_among_many_is_one_result_and_the_rest_continue(demo, images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    inputs = [images[0], bad, *images[1:4]]
    targets = [tmp_path / f"{i}.png" for i in range(len(inputs))]
    with load(demo, backend="ort") as runner:
        results = predict_many(runner, inputs, targets, batch=2)
    assert [r.status for r in results] == ["ok", "error", "ok", "ok", "ok"]
    assert "cannot read image" in results[1].error and str(bad) in results[1].error
    assert "\n" not in results[1].error
    assert [t.exists() for t in targets] == [True, False, True, True, True]


def test_stopping_keeps_finished_masks_and_resumes(demo, images, tmp_path):
    targets = [tmp_path / f"{p.stem}_OUT.png" for p in images]
    with load(demo, backend="ort") as runner:
        gen = iter_predictions(runner, images, targets, batch=2)
        first = [next(gen), next(gen)]
        gen.close()                                          # what Ctrl-C in the consuming thread does
        assert not [t for t in threading.enumerate() if t.name.startswith(("read-", "infer", "write-"))]
        done = {r.index for r in first}
        written = [t for t in targets if t.exists()]
        assert len(written) >= 2
        for t in written:
            Image.open(t).verify()                           # complete files only
        assert not list(tmp_path.glob(".*.tmp"))
        rest = predict_many(runner, images, targets, batch=2, skip_existing=True)
    assert {r.index for r in rest if r.status == "skipped"} >= done
    assert all(r.status in ("ok", "skipped") for r in rest) and all(t.exists() for t in targets)


def test_writer_writes_index_png_and_overlay(tmp_path):
    mask = np.array([[0, 1, 2], [2, 1, 0]])
    target = MaskWriter(None, classes=3, overlay=True)(mask, tmp_path / "a_OUT.png", np.zeros((2, 3, 3), np.uint8))
    assert Image.open(target).mode == "P" and np.array_equal(np.asarray(Image.open(target)), mask)
    assert Image.open(tmp_path / "a_OVERLAY.png").size == (3, 2)
