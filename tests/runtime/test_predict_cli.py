"""unet-predict: milesial-compatible masks, folders, batching, overlays, bad input."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from unetrt.assets import demo_checkpoint, demo_sample_mask, demo_samples
from unetrt.cli import main
from unetrt.exporter import ExportConfig, export
from unetrt.models import apply_checkpoint, create_model, load_checkpoint

KW = {"num_classes": 3, "width": 8}


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "export"
    export(ExportConfig(arch="milesial", model_kwargs=KW, checkpoint=str(demo_checkpoint()), output_dir=str(out),
                        engine=False))
    return out


def _milesial_reference(path, scale):
    """milesial's predict_img + mask_to_image, step by step, on the eager model."""
    state, meta = load_checkpoint(demo_checkpoint())
    net = create_model("milesial", **KW)
    apply_checkpoint(net, state)
    full = Image.open(path)
    w, h = full.size
    img = full.resize((int(scale * w), int(scale * h)), resample=Image.BICUBIC)
    arr = np.asarray(img).transpose((2, 0, 1))
    if (arr > 1).any():
        arr = arr / 255.0
    with torch.no_grad():
        out = net(torch.from_numpy(arr[None]).float())
        out = F.interpolate(out, (h, w), mode="bilinear")
    mask = out.argmax(dim=1)[0].numpy()
    values = meta["mask_values"]
    ref = np.zeros(mask.shape, dtype=np.uint8)
    for i, v in enumerate(values):
        ref[mask == i] = v
    return ref


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_masks_match_milesial_predict(demo_export, tmp_path, scale):
    sample = demo_samples()[1]  # 97x143, odd and non-square
    out = tmp_path / "m.png"
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(sample), "-o", str(out),
                                    "--scale", str(scale)])
    assert res.exit_code == 0, res.output
    got = np.asarray(Image.open(out))
    ref = _milesial_reference(sample, scale)
    assert got.shape == ref.shape
    assert np.mean(got == ref) >= 0.999
    assert set(np.unique(got)) <= {0, 127, 255}


def _dice(pred, truth):
    scores = []
    for v in (127, 255):
        a, b = pred == v, truth == v
        scores.append(2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1))
    return float(np.mean(scores))


def test_folder_batch_overlay_json_and_dice(demo_export, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for s in demo_samples():
        (folder / s.name).write_bytes(s.read_bytes())
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    out.mkdir()
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(folder), "-o", f"{out}/",
                                    "--overlay", "--batch", "4", "--json"])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "broken.png" in res.output
    report = json.loads(res.stdout[res.stdout.index("{"):])
    assert len(report["images"]) == len(demo_samples())
    for s in demo_samples():
        mask = np.asarray(Image.open(out / f"{s.stem}_OUT.png"))
        truth = np.asarray(Image.open(demo_sample_mask(s)))
        assert mask.shape == truth.shape
        assert _dice(mask, truth) >= 0.9
        overlay = np.asarray(Image.open(out / f"{s.stem}_OVERLAY.png"))
        assert overlay.shape == (*truth.shape, 3)


def test_default_output_name_and_force(demo_export, tmp_path):
    img = tmp_path / "x.png"
    img.write_bytes(demo_samples()[0].read_bytes())
    args = ["predict", "-m", str(demo_export), "-i", str(img)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert (tmp_path / "x_OUT.png").exists()
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1 and "exists" in res.output and "--force" in res.output
    assert CliRunner().invoke(main, args + ["--force"]).exit_code == 0


def test_bad_inputs(demo_export, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"junk")
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(bad), "-o", str(tmp_path / "o.png")])
    assert res.exit_code == 1 and "cannot read image" in res.output
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tiny)
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(tiny), "-o", str(tmp_path / "t.png")])
    assert res.exit_code == 1 and "smaller than the model's minimum" in res.output
    res = CliRunner().invoke(main, ["predict", "-m", str(tmp_path / "nope"), "-i", str(tiny)])
    assert res.exit_code == 1 and "does not exist" in res.output


def test_grayscale_image_is_converted_for_rgb_model(demo_export, tmp_path):
    gray = tmp_path / "g.png"
    Image.open(demo_samples()[0]).convert("L").save(gray)
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(gray), "-o", str(tmp_path / "g_o.png")])
    assert res.exit_code == 0, res.output
    assert np.asarray(Image.open(tmp_path / "g_o.png")).shape == (128, 128)


def test_manifest_sha_mismatch_is_refused(demo_export, tmp_path):
    import shutil

    copy = tmp_path / "exp"
    shutil.copytree(demo_export, copy)
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    res = CliRunner().invoke(main, ["predict", "-m", str(copy / "model.onnx"), "-i", str(demo_samples()[0]),
                                    "-o", str(tmp_path / "o.png")])
    assert res.exit_code == 1 and "manifest" in res.output and "re-export" in res.output


# --- issue 10: output folders, read-only outputs, milesial's command line, image modes ------------------

def test_output_folder_by_trailing_slash_or_existing_dir(demo_export, tmp_path):
    img = tmp_path / "x.png"
    img.write_bytes(demo_samples()[0].read_bytes())
    new = tmp_path / "new"
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(img), "-o", f"{new}/"])
    assert res.exit_code == 0, res.output
    assert new.is_dir() and (new / "x_OUT.png").is_file()
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(img), "-o", str(new), "--force"])
    assert res.exit_code == 0, res.output                                   # existing dir, no slash: inside it
    assert sorted(p.name for p in new.iterdir()) == ["x_OUT.png"]


def test_read_only_output_dir_is_one_line(demo_export, tmp_path, monkeypatch):
    import os
    import tempfile

    img = tmp_path / "x.png"
    img.write_bytes(demo_samples()[0].read_bytes())
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    real_access, real_mkstemp = os.access, tempfile.mkstemp

    def access(path, mode, *a, **kw):  # tests may run as root, who may write anywhere
        return False if os.path.realpath(path) == str(ro) and mode & os.W_OK else real_access(path, mode, *a, **kw)

    def mkstemp(*a, dir=None, **kw):
        if dir is not None and os.path.realpath(dir) == str(ro):
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*a, dir=dir, **kw)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(img), "-o", str(ro / "m.png")])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.exception
    assert f"output directory {ro} is not writable" in res.output and len(res.output.strip().splitlines()) == 1


def test_milesial_command_line(demo_export, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(demo_samples()[0].read_bytes())
    b.write_bytes(demo_samples()[1].read_bytes())
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(a), str(b),
                                    "-o", str(tmp_path / "a_out.png"), str(tmp_path / "b_out.png"), "-s", "1"])
    assert res.exit_code == 0, res.output
    onnx_b = np.asarray(Image.open(tmp_path / "b_out.png"))
    assert np.asarray(Image.open(tmp_path / "a_out.png")).shape == (128, 128) and onnx_b.shape == (97, 143)
    # milesial's own flags on its .pth, run eagerly: same masks as the export (mask_values from the checkpoint)
    res = CliRunner().invoke(main, ["predict", "--model", str(demo_checkpoint()), "--classes", "3", "--width", "8",
                                    "--input", str(b), "--output", str(tmp_path / "eager.png"), "--mask-threshold",
                                    "0.5", "--scale", "1", "--viz"])
    assert res.exit_code == 0, res.output
    assert np.mean(np.asarray(Image.open(tmp_path / "eager.png")) == onnx_b) >= 0.999
    assert Image.open(tmp_path / "eager_VIZ.png").size[0] > 100             # milesial's plot_img_and_mask
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_checkpoint()), "-c", "3", "--width", "8", "--bilinear",
                                    "-i", str(b), "--no-save", "-v"])
    assert res.exit_code == 1 and "bilinear" in res.output.lower()          # a bilinear model cannot take these weights
    res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(a), str(b), "-o", str(tmp_path / "1.png")])
    assert res.exit_code == 1 and "1 output path(s) for 2 input image(s)" in res.output


def test_16bit_and_palette_pngs_predict_like_8bit_rgb(demo_export, tmp_path):
    src = Image.open(demo_samples()[1])
    gray8, gray16 = tmp_path / "g8.png", tmp_path / "g16.png"
    src.convert("L").save(gray8)
    Image.fromarray(np.asarray(src.convert("L")).astype(np.uint16) * 257).save(gray16)
    assert Image.open(gray16).mode == "I;16"
    pal = tmp_path / "p.png"
    src.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(pal)
    rgb_of_pal = tmp_path / "prgb.png"
    Image.open(pal).convert("RGB").save(rgb_of_pal)
    outs = {}
    for p in (gray8, gray16, pal, rgb_of_pal):
        res = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(p), "-o", str(tmp_path / f"{p.stem}_m.png")])
        assert res.exit_code == 0, res.output
        outs[p.stem] = np.asarray(Image.open(tmp_path / f"{p.stem}_m.png"))
    assert np.mean(outs["g16"] == outs["g8"]) >= 0.999
    assert np.mean(outs["p"] == outs["prgb"]) == 1.0
