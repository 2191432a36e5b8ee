"""unet-predict on Ray Data: a local Ray (2 CPUs), masks byte-identical to the local run, failures contained."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unetrt.assets import demo_checkpoint, demo_samples
from unetrt.cli import main
from unetrt.errors import UnetrtError
from unetrt.exporter import ExportConfig, export

ray = pytest.importorskip("ray", reason="needs unetrt[ray]")
from unetrt.runtime.ray_predict import ImageJob, RayOptions, SegmentActor, predict_with_ray, require_ray  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("ray_demo") / "export"
    export(ExportConfig(arch="milesial", model_kwargs={"num_classes": 3, "width": 8}, checkpoint=str(demo_checkpoint()),
                        output_dir=str(out), engine=False, verify=False))
    return out


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def images(tmp_path):
    """The demo samples plus two generated images of other sizes, in one folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    for p in demo_samples():
        shutil.copy(p, folder / p.name)
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate([(77, 130), (200, 64)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"gen_{i}.png")
    return sorted(folder.glob("*.png"))


def _targets(files, out):
    return [out / f"{f.stem}_OUT.png" for f in files]


def test_masks_are_byte_identical_to_the_local_run(demo_export, local_ray, images, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "ray"
    result = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", *map(str, images), "-o", f"{local}/"])
    assert result.exit_code == 0, result.output
    remote.mkdir()
    seen = []
    rows = predict_with_ray(images, _targets(images, remote), ImageJob(model=str(demo_export)),
                            RayOptions(concurrency=2, batch_size=2), on_row=seen.append)
    assert [r["input"] for r in rows] == [os.path.abspath(p) for p in images]
    assert len(seen) == len(images)
    for f, row in zip(images, rows):
        assert row["error"] is None
        assert row["size"] == list(np.asarray(Image.open(f)).shape[:2])
        assert sum(row["class_pixels"]) == row["size"][0] * row["size"][1]
        ours, theirs = (remote / f"{f.stem}_OUT.png").read_bytes(), (local / f"{f.stem}_OUT.png").read_bytes()
        assert ours == theirs, f.name
    assert not [p for p in remote.iterdir() if not p.name.endswith("_OUT.png")]  # no temp files left


def test_unreadable_file_is_reported_and_the_rest_continue(demo_export, local_ray, images, tmp_path):
    bad = images[0].parent / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    files = sorted([*images[:2], bad])
    out = tmp_path / "out"
    out.mkdir()
    rows = predict_with_ray(files, _targets(files, out), ImageJob(model=str(demo_export)), RayOptions(batch_size=3))
    by_name = {os.path.basename(r["input"]): r for r in rows}
    assert by_name["broken.png"]["output"] is None
    assert by_name["broken.png"]["error"].startswith(f"cannot read image {bad}")
    assert "BytesIO" not in by_name["broken.png"]["error"]
    assert not (out / "broken_OUT.png").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{f.stem}_OUT.png" for f in images[:2])


def test_a_killed_worker_is_retried_and_every_output_written(demo_export, local_ray, images, tmp_path):
    marker = tmp_path / "died-once"

    class DiesOnce(SegmentActor):  # defined in a function: Ray ships it by value to the workers
        def __call__(self, batch):
            if not marker.exists():
                marker.write_text("x")
                os._exit(1)  # the worker process dies mid-batch, as under the OOM killer
            return super().__call__(batch)

    out = tmp_path / "out"
    out.mkdir()
    rows = predict_with_ray(images, _targets(images, out), ImageJob(model=str(demo_export)),
                            RayOptions(concurrency=1, batch_size=2), segmenter=DiesOnce)
    assert marker.exists()
    assert [r["error"] for r in rows] == [None] * len(images)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{f.stem}_OUT.png" for f in images)


def test_missing_ray_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UnetrtError) as err:
        require_ray()
    assert "pip install 'unetrt[ray]'" in str(err.value)
    assert "\n" not in str(err.value)


def test_unet_predict_ray_flag_writes_the_local_masks_and_index(demo_export, local_ray, images, tmp_path):
    local, remote, index = tmp_path / "local", tmp_path / "ray", tmp_path / "index.jsonl"
    args = ["predict", "-m", str(demo_export), "-i", str(images[0].parent)]
    assert CliRunner().invoke(main, [*args, "-o", f"{local}/"]).exit_code == 0
    result = CliRunner().invoke(main, [*args, "-o", f"{remote}/", "--ray", "--ray-actors", "2", "--batch", "2",
                                       "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert f"{len(images)} image(s) in" in result.output and "on Ray" in result.output
    for f in images:
        assert (remote / f"{f.stem}_OUT.png").read_bytes() == (local / f"{f.stem}_OUT.png").read_bytes(), f.name
    import json

    rows = [json.loads(line) for line in index.read_text().splitlines()]
    assert sorted(os.path.basename(r["input"]) for r in rows) == sorted(f.name for f in images)
    assert {r["status"] for r in rows} == {"ok"}
    again = CliRunner().invoke(main, [*args, "-o", f"{remote}/", "--ray", "--skip-existing"])
    assert again.exit_code == 0 and again.output.count("[exists, skipped]") == len(images), again.output


def test_ray_with_viz_is_refused_in_one_line(demo_export, tmp_path, images):
    result = CliRunner().invoke(main, ["predict", "-m", str(demo_export), "-i", str(images[0]), "-o", f"{tmp_path}/o/",
                                       "--ray", "--viz"])
    assert result.exit_code != 0
    assert "--ray with --viz" in result.output and "Traceback" not in result.output
