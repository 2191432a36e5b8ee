"""unet-predict never destroys data: device nodes, FIFOs, sockets and input images are never replaced."""

import os
import socket

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unetrt.cli import main
from unetrt.errors import OutputError
from unetrt.exporter import ExportConfig, export
from unetrt.fileio import atomic_write_bytes


@pytest.fixture(scope="module")
def three_class_export(tmp_path_factory):
    """A random-init 3-class milesial export: its manifest has no mask_values (as every --model export)."""
    out = tmp_path_factory.mktemp("safety") / "export"
    export(ExportConfig(arch="milesial", model_kwargs={"num_classes": 3, "width": 4}, output_dir=str(out),
                        verify=False, engine=False))
    return out


@pytest.fixture(scope="module")
def export_3d(tmp_path_factory):
    out = tmp_path_factory.mktemp("plain3d")
    export(ExportConfig(factory="tests.fixtures.thirdparty:plain3d", model_kwargs={"width": 2}, output_dir=str(out),
                        verify=False, engine=False))
    return out


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


def _predict(*args):
    return CliRunner().invoke(main, ["predict", *map(str, args)])


def test_fifo_and_socket_outputs_are_refused_even_with_force(three_class_export, image, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    res = _predict("-m", three_class_export, "-i", image, "-o", fifo, "--force")
    assert res.exit_code == 1 and f"output {fifo} is a FIFO" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert os.path.exists(fifo) and not os.path.isfile(fifo)
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        res = _predict("-m", three_class_export, "-i", image, "-o", sock_path, "--force")
    assert res.exit_code == 1 and "is a socket" in res.output, res.output


def test_atomic_writes_never_replace_a_special_file(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="is a FIFO"):
        atomic_write_bytes(fifo, b"data")
    assert not os.path.isfile(fifo)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]                  # no temporary file left behind


def test_char_device_is_recognised():
    from unetrt.fileio import special_file_kind

    assert special_file_kind("/dev/null") == "a character device"


@pytest.mark.parametrize("force", [False, True])
def test_output_equal_to_an_input_is_refused(three_class_export, image, tmp_path, monkeypatch, force):
    before = image.read_bytes()
    flag = ["--force"] if force else []
    res = _predict("-m", three_class_export, "-i", image, "-o", image, *flag)
    assert res.exit_code == 1 and f"is the input {image}" in res.output, res.output
    link = tmp_path / "link.png"
    link.symlink_to(image)
    res = _predict("-m", three_class_export, "-i", image, "-o", link, *flag)
    assert res.exit_code == 1 and "is the input" in res.output, res.output
    monkeypatch.chdir(tmp_path)
    os.mkdir("sub")
    res = _predict("-m", three_class_export, "-i", image, "-o", "sub/../a.png", *flag)
    assert res.exit_code == 1 and "is the input" in res.output, res.output
    hard = tmp_path / "hard.png"
    os.link(image, hard)
    res = _predict("-m", three_class_export, "-i", hard, "-o", image, *flag)
    assert res.exit_code == 1 and "is the input" in res.output, res.output
    assert image.read_bytes() == before
    res = _predict("-m", three_class_export, "-i", image, "-o", three_class_export / "model.onnx", *flag)
    assert res.exit_code == 1 and "is the input" in res.output, res.output


# --- issue 19.3: a multi-class model without mask_values keeps every class ---------------------------------

def test_three_class_mask_without_mask_values_keeps_every_class(three_class_export, tmp_path):
    from unetrt.runtime import load
    from unetrt.runtime.transforms import load_image, preprocess

    rng = np.random.default_rng(1)
    path = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(path)
    out = tmp_path / "x_mask.png"
    res = _predict("-m", three_class_export, "-i", path, "-o", out)
    assert res.exit_code == 0, res.output
    with load(three_class_export, backend="ort") as runner:
        logits = runner.infer({"input": preprocess(load_image(path, 3))})["logits"]
    expected = logits[0].argmax(axis=0)
    img = Image.open(out)
    assert img.mode == "P"                                           # index PNG, palette for viewing
    got = np.asarray(img)
    assert got.shape == (64, 80) and np.array_equal(got, expected)
    counts = np.bincount(got.ravel(), minlength=3)
    assert counts[2] == int((expected == 2).sum())
    palette = img.getpalette()[:9]
    assert len(set(map(tuple, np.reshape(palette, (3, 3)).tolist()))) == 3  # three distinct class colours


def test_mask_values_keep_milesials_mask_to_image():
    from unetrt.runtime.masks import mask_image

    mask = np.array([[0, 1], [2, 1]])
    assert np.asarray(mask_image(mask, [0, 127, 255])).tolist() == [[0, 127], [255, 127]]
    binary = mask_image(np.array([[0, 1]]), None, classes=2)
    assert binary.mode == "1" and np.asarray(binary).tolist() == [[False, True]]
    assert mask_image(np.array([[0, 1]]), None, classes=3).mode == "P"   # the model's classes, not the content


# --- issues 19.10, 19.11, 19.13: volumes into folders, empty volumes, lossy suffixes, long paths, fallbacks ---

def test_volume_into_new_folder_and_empty_volume(export_3d, tmp_path):
    vol = tmp_path / "v.npy"
    np.save(vol, np.random.default_rng(0).random((6, 8, 10), dtype=np.float32))
    res = _predict("-m", export_3d, "--backend", "ort", "-i", vol, "-o", f"{tmp_path / 'newdir'}/")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "newdir").is_dir() and (tmp_path / "newdir" / "v_OUT.npy").is_file()
    assert np.load(tmp_path / "newdir" / "v_OUT.npy").shape == (6, 8, 10)
    empty = tmp_path / "e.npy"
    empty.write_bytes(b"")
    res = _predict("-m", export_3d, "-i", empty, "-o", tmp_path / "e_out.npy")
    assert res.exit_code == 1 and "Aborted" not in res.output
    assert f"cannot read volume {empty}: the file is empty" in res.output
    assert len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp", ".txt"])
def test_lossy_or_unknown_mask_suffix_is_refused(three_class_export, image, tmp_path, suffix):
    out = tmp_path / f"mask{suffix}"
    res = _predict("-m", three_class_export, "-i", image, "-o", out)
    assert res.exit_code == 1 and "is not a lossless mask format" in res.output and "use -o mask.png" in res.output
    assert not out.exists()


@pytest.mark.parametrize("suffix,fmt", [(".tif", "TIFF"), (".bmp", "BMP"), (".png", "PNG")])
def test_mask_written_in_the_format_its_suffix_names(three_class_export, image, tmp_path, suffix, fmt):
    out = tmp_path / f"mask{suffix}"
    res = _predict("-m", three_class_export, "-i", image, "-o", out)
    assert res.exit_code == 0, res.output
    assert Image.open(out).format == fmt
    ref = tmp_path / "ref.png"
    assert _predict("-m", three_class_export, "-i", image, "-o", ref).exit_code == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(ref)))


def test_paths_over_255_characters_are_one_line(three_class_export, image, tmp_path):
    long_in = tmp_path / ("x" * 300 + ".png")
    for args in (["-i", long_in], ["-i", image, "-o", tmp_path / ("y" * 300 + ".png")],
                 ["-i", tmp_path / ("z" * 300 + ".npy")]):
        res = _predict("-m", three_class_export, *args)
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
        assert "File name too long" in res.output and len(res.output.strip().splitlines()) == 1


def test_missing_fp32_onnx_switch_to_fp16_is_said(export_dir, image, tmp_path):
    import shutil

    copy = tmp_path / "exp"
    shutil.copytree(export_dir, copy)
    (copy / "model.onnx").unlink()
    res = CliRunner().invoke(main, ["predict", "-m", str(copy), "-i", str(image),
                                                    "-o", str(tmp_path / "m.png")])
    assert res.exit_code == 0, res.output
    assert "model.onnx listed in the manifest is missing; running model_fp16.onnx (ort-fp16) instead" in res.stderr
