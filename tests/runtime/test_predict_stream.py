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
from unetrt.runtime.segment import MaskWriter, Segmenter
from unetrt.runtime.stream import iter_predictions, predict_many
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


def _tree(root, images):
    """root/a/<2 images>, root/a/deep/<1 image + broken.png>, root/b/<2 images>, root/list.txt naming b's."""
    import shutil

    (root / "a" / "deep").mkdir(parents=True)
    (root / "b").mkdir()
    for i, p in enumerate(images[:5]):
        folder = [root / "a", root / "a", root / "a" / "deep", root / "b", root / "b"][i]
        shutil.copy(p, folder / f"img{i}.png")
    (root / "a" / "deep" / "broken.png").write_bytes(b"not an image")
    (root / "list.txt").write_text("# images of b\nb/img3.png\n\nb/img4.png\n")
    return root


def test_expand_inputs_folders_globs_and_lists(images, tmp_path):
    from unetrt.errors import InputError
    from unetrt.runtime.dataset import expand_inputs, output_paths

    root = _tree(tmp_path / "data", images)
    flat = expand_inputs([str(root / "a")])
    assert [s.path.name for s in flat] == ["img0.png", "img1.png"] and all(s.listed for s in flat)
    deep = expand_inputs([str(root / "a")], recursive=True)
    assert sorted(s.path.name for s in deep) == ["broken.png", "img0.png", "img1.png", "img2.png"]
    outs = output_paths(deep, [str(tmp_path / "out") + "/"])
    assert {o.relative_to(tmp_path / "out").as_posix() for o in outs} == {
        "img0_OUT.png", "img1_OUT.png", "deep/img2_OUT.png", "deep/broken_OUT.png"}  # sub-folders mirrored
    globbed = expand_inputs([str(root / "**" / "img*.png")])
    assert sorted(s.path.name for s in globbed) == [f"img{i}.png" for i in range(5)]
    listed = expand_inputs([f"@{root / 'list.txt'}"])
    assert [s.path for s in listed] == [root / "b" / "img3.png", root / "b" / "img4.png"]
    with pytest.raises(InputError, match="list file"):
        expand_inputs([f"@{root / 'missing.txt'}"])


def test_cli_index_progress_skip_existing_and_unreadable(demo, images, tmp_path):
    import json

    from click.testing import CliRunner

    from unetrt.cli.predict import predict_cmd

    root = _tree(tmp_path / "data", images)
    out, index = tmp_path / "out", tmp_path / "index.jsonl"
    args = ["-m", str(demo), "-i", str(root / "a"), f"@{root / 'list.txt'}", "-r", "-o", f"{out}/",
            "--index", str(index), "--batch", "2"]
    res = CliRunner().invoke(predict_cmd, args)
    assert res.exit_code == 0, res.output
    assert "warning: skipped" in res.output and "broken.png" in res.output and "images/s" in res.output
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    assert len(rows) == 6 and sorted(r["status"] for r in rows) == ["error"] + ["ok"] * 5
    bad = next(r for r in rows if r["status"] == "error")
    assert bad["input"].endswith("broken.png") and "cannot read image" in bad["error"] and bad["output"] is None
    for r in (r for r in rows if r["status"] == "ok"):
        h, w = r["size"]
        mask = np.asarray(Image.open(r["output"]))
        assert mask.shape == (h, w) and sum(r["class_pixels"]) == h * w and len(r["class_pixels"]) == 3
        assert r["class_pixels"][0] == int((mask == 0).sum()) and r["ms"] > 0  # mask values 0/127/255
    assert (out / "deep" / "img2_OUT.png").is_file() and not (out / "deep" / "broken_OUT.png").exists()
    first = {p: p.stat().st_mtime_ns for p in out.rglob("*_OUT.png")}
    res = CliRunner().invoke(predict_cmd, args + ["--skip-existing"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    assert len(rows) == 12 and [r["status"] for r in rows[6:]].count("skipped") == 5  # appended, nothing redone
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*_OUT.png")} == first


def test_sigterm_in_the_cli_keeps_finished_masks_and_resumes(demo, images, tmp_path, monkeypatch):
    import os
    import signal

    from click.testing import CliRunner

    from unetrt.cli.predict import predict_cmd
    from unetrt.runtime import segment

    real, calls = segment.MaskWriter.__call__, []

    def write_then_term(self, mask, target, image=None):
        out = real(self, mask, target, image)
        calls.append(target)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)                 # the CLI's handler turns it into a clean stop
        return out

    monkeypatch.setattr(segment.MaskWriter, "__call__", write_then_term)
    out = tmp_path / "out"
    args = ["-m", str(demo), "-i", *map(str, images), "-o", f"{out}/", "--batch", "1", "--writers", "1"]
    previous = signal.getsignal(signal.SIGTERM)
    res = CliRunner().invoke(predict_cmd, args)
    assert res.exit_code == 143, res.output
    assert "terminated after" in res.output and "--skip-existing" in res.output and "Traceback" not in res.output
    assert signal.getsignal(signal.SIGTERM) == previous
    alive = [t.name for t in threading.enumerate() if t.name.startswith(("read-", "infer", "write-"))]
    assert not alive, alive                                      # no thread left blocked on a full queue
    written = sorted(out.glob("*_OUT.png"))
    assert 3 <= len(written) < len(images) and not [p for p in out.iterdir() if p.name.startswith(".")]
    for p in written:
        Image.open(p).verify()                                   # complete files only
    monkeypatch.setattr(segment.MaskWriter, "__call__", real)
    res = CliRunner().invoke(predict_cmd, args + ["--skip-existing"])
    assert res.exit_code == 0, res.output
    assert res.output.count("[exists, skipped]") == len(written) and len(list(out.glob("*_OUT.png"))) == len(images)


def test_full_disk_is_one_line_and_keeps_finished_masks(demo, images, tmp_path, monkeypatch):
    import errno

    from click.testing import CliRunner

    from unetrt.cli.predict import predict_cmd
    from unetrt.runtime import masks

    real, calls = masks.mask_image, []

    class DiskFull:
        """The mask image whose save writes half a file, then finds the disk full."""

        def __init__(self, img):
            self.img = img

        def save(self, fp, format=None):
            with open(fp, "wb") as f:
                f.write(b"\x89PNG half")
            raise OSError(errno.ENOSPC, "No space left on device")

    def mask_image(*a, **kw):
        calls.append(1)
        img = real(*a, **kw)
        return DiskFull(img) if len(calls) >= 4 else img

    monkeypatch.setattr(masks, "mask_image", mask_image)
    out = tmp_path / "out"
    res = CliRunner().invoke(predict_cmd, ["-m", str(demo), "-i", *map(str, images), "-o", f"{out}/", "--batch", "1",
                                           "--writers", "1"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "No space left on device" in res.output and "free space" in res.output
    written = sorted(out.glob("*_OUT.png"))
    assert len(written) == 3 and sorted(p.name for p in out.iterdir()) == [p.name for p in written]  # no partial file
    for p in written:
        Image.open(p).verify()
