"""examples/python/segment.py end to end: the README's export command on the shipped demo checkpoint
(normal export, parity verification included), then the example in a subprocess on the shipped samples,
checked against their ground-truth masks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unetrt.assets import demo_checkpoint, demo_sample_mask, demo_samples

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "python" / "segment.py"
SAMPLES = demo_samples()
MASK_VALUES = [0, 127, 255]
pytestmark = pytest.mark.slow  # every test runs the example in a subprocess on a fresh export of the demo model


def _export_command() -> list[str]:
    exe = Path(sys.executable).with_name("unet-export")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from unetrt.cli.export import main; main()"]


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory) -> Path:
    """The export examples/python/README.md tells users to make, into a temporary directory."""
    out = tmp_path_factory.mktemp("examples") / "demo"
    res = subprocess.run(_export_command() + ["--checkpoint", str(demo_checkpoint()), "--classes", "3",
                                              "--width", "8", "-o", str(out)],
                         capture_output=True, text=True, timeout=900, cwd=out.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["verification"]["performed"] and manifest["verification"]["passed"]
    assert manifest["mask_values"] == MASK_VALUES
    return out


def _segment(export: Path, image: Path, output: Path) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, str(EXAMPLE), str(export), str(image), str(output)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_samples_are_shipped():
    assert len(SAMPLES) >= 1
    assert all(demo_sample_mask(p).is_file() for p in SAMPLES)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_example_matches_ground_truth(demo_export, sample, tmp_path):
    out = tmp_path / "mask.png"
    res = _segment(demo_export, sample, out)
    assert sample.name in res.stdout

    image, truth, mask = (np.asarray(Image.open(p)) for p in (sample, demo_sample_mask(sample), out))
    assert mask.shape == image.shape[:2] == truth.shape
    assert mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= set(MASK_VALUES)
    agreement = float((mask == truth).mean())
    assert agreement >= 0.95, f"{sample.name}: mask agrees with the ground truth on {agreement:.2%} of pixels"


def test_example_pads_small_grey_images(demo_export, tmp_path):
    """Below the model's minimum size (16) and one channel: converted, padded, and cropped back."""
    rgb = np.asarray(Image.open(SAMPLES[0]))[..., :3]
    grey = (rgb.astype(np.float64) @ [0.299, 0.587, 0.114]).round().astype(np.uint8)[:11, :13]
    Image.fromarray(grey).save(tmp_path / "small.png")
    out = tmp_path / "mask.png"
    _segment(demo_export, tmp_path / "small.png", out)
    mask = np.asarray(Image.open(out))
    assert mask.shape == (11, 13)
    assert set(np.unique(mask).tolist()) <= set(MASK_VALUES)


def test_example_usage_error():
    res = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 2
    assert "usage:" in res.stderr
    help_text = subprocess.run([sys.executable, str(EXAMPLE), "--help"], capture_output=True, text=True,
                               timeout=300, cwd=ROOT).stdout
    assert "export/milesial image.png mask.png" in help_text and "export/demo" not in help_text
    assert "Usage: python examples/python/segment.py export/milesial image.png mask.png" in EXAMPLE.read_text()


def test_example_missing_inputs_are_one_line(demo_export, tmp_path):
    """A missing export, a missing image, an unwritable output: one error line, exit 1, no traceback."""
    image = tmp_path / "in.png"
    Image.new("RGB", (20, 20)).save(image)
    missing = tmp_path / "export" / "milesial"
    cases = [([missing, image, tmp_path / "m.png"], f"error: no export in {missing} (no manifest.json) | expected a "
                                                   "directory written by unet-export | run unet-export first"),
             ([demo_export, tmp_path / "missing.png", tmp_path / "m.png"],
              f"error: No such file or directory: {tmp_path / 'missing.png'}"),
             ([demo_export, image, tmp_path / "no" / "dir" / "m.png"], "error: No such file or directory: ")]
    for args, needle in cases:
        res = subprocess.run([sys.executable, str(EXAMPLE), *map(str, args)], capture_output=True, text=True,
                             timeout=300, cwd=ROOT)
        assert res.returncode == 1, res.stderr
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith(needle) and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "m.png").exists()
