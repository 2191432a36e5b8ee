"""``unetrt triton --shape-buckets``: the ensemble pads mixed sizes to a few shapes (so they batch) and crops back."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from click.testing import CliRunner

from tests.serve.conftest import running_server
from unetrt.errors import ServeError
from unetrt.runtime.transforms import align_pad, crop
from unetrt.serve.buckets import bucket_for, check_buckets, pad_to_buckets, parse_buckets

BUCKETS = (64, 128)
#: (H, W) of the test images: one exactly a bucket (64x64), the rest padded up to 128 or 64 on an axis.
SIZES = [(64, 64), (100, 90), (120, 128), (70, 50), (128, 96), (90, 110), (65, 127), (110, 100)]


def test_parse_buckets_sorts_and_refuses_junk():
    assert parse_buckets("1024, 256,512,256") == (256, 512, 1024)
    assert parse_buckets([64, 32]) == (32, 64) and parse_buckets(None) == () and parse_buckets("") == ()
    for bad in ("256,abc", "0,64", "-64", "64.5", [64.0]):
        with pytest.raises(ServeError, match="positive integers"):
            parse_buckets(bad)


def test_check_buckets_follows_the_models_alignment_and_profile():
    assert check_buckets((32, 64), alignment=16, min_size=16) == (32, 64)
    with pytest.raises(ServeError, match="multiples of 16") as err:
        check_buckets((32, 40), alignment=16, min_size=16)
    assert "use e.g. 16, 32, 64" in str(err.value)
    with pytest.raises(ServeError, match="at least 32"):
        check_buckets((16,), alignment=16, min_size=32)
    with pytest.raises(ServeError, match="exceeds the engine profile"):
        check_buckets((64, 512), alignment=16, min_size=16, max_hw=(256, 384))
    with pytest.raises(ServeError, match="below the engine profile"):
        check_buckets((64,), alignment=16, min_size=16, min_hw=(128, 128))


@pytest.mark.parametrize("shape", [(50, 70), (64, 64), (129, 40), (300, 20)])
def test_bucket_pad_is_the_alignment_pad_carried_further(shape):
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, *shape), dtype=np.float32)
    aligned, box = align_pad(x, 16, "replicate", min_size=16)
    out = pad_to_buckets(aligned, (64, 128, 256))
    want = tuple(bucket_for(s, (64, 128, 256)) or s for s in aligned.shape[-2:])
    assert out.shape[-2:] == want  # 300 is larger than every bucket: keeps its aligned size
    assert np.array_equal(out, np.pad(x, [(0, 0), (0, 0), (0, want[0] - shape[0]), (0, want[1] - shape[1])], "edge"))
    assert np.array_equal(crop(out, box), x)


@pytest.mark.slow
def test_repository_options_and_refusals(demo_export, aligned_export, tmp_path):
    from unetrt.cli.triton import triton_cmd
    from unetrt.serve import configs

    res = CliRunner().invoke(triton_cmd, [str(demo_export), "-o", str(tmp_path / "r"), "--with-preprocess",
                                          "--shape-buckets", "128,64"])
    assert res.exit_code == 0, res.output
    pre = configs.read_config(tmp_path / "r" / "unet_preprocess")
    assert json.loads(pre.parameters["unetrt.shape_buckets"].string_value) == [64, 128]
    assert "shape buckets 64, 128" in (tmp_path / "r" / "unetrt_repository.json").read_text()
    for args, message in [
        ([str(demo_export), "--shape-buckets", "64"], "--shape-buckets without --with-preprocess"),
        ([str(demo_export), "--with-preprocess", "--shape-buckets", "64,x"], "positive integers"),
        ([str(aligned_export), "--with-preprocess", "--shape-buckets", "64,72"], "multiples of 16"),
    ]:
        out = tmp_path / f"bad{len(message)}"
        res = CliRunner().invoke(triton_cmd, args + ["-o", str(out)])
        assert res.exit_code != 0 and message in res.output and "Traceback" not in res.output
        assert not out.exists()  # nothing half-written


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """Crops of the demo samples at the mixed SIZES (real content, so masks have several classes)."""
    from PIL import Image

    from unetrt.assets import demo_samples

    with Image.open(demo_samples()[0]) as img:
        base = np.asarray(img.convert("RGB").resize((160, 160)))
    return [np.ascontiguousarray(base[i:i + h, 2 * i:2 * i + w]) for i, (h, w) in enumerate(SIZES)]


@pytest.fixture(scope="module")
def bucket_server(demo_export, tmp_path_factory):
    from unetrt.serve.repository import write_repository

    repo = tmp_path_factory.mktemp("buckets") / "repo"  # a long queue delay: concurrent requests meet
    write_repository(demo_export, repo, name="unet", with_preprocess=True, shape_buckets=BUCKETS,
                     max_queue_delay_us=300_000, max_batch=8, threads=1)
    with running_server(repo) as srv:
        yield srv


@pytest.mark.slow
@pytest.mark.serve
def test_mixed_sizes_batch_and_masks_are_the_bucket_padded_predictions(bucket_server, demo_export, images):
    from PIL import Image

    from unetrt.runtime import load
    from unetrt.runtime.masks import mask_image
    from unetrt.runtime.predict import predict
    from unetrt.serve.client import TritonClient, segment_image

    url = bucket_server.http_url
    with TritonClient(url) as client:
        before = client.statistics("unet")
    with ThreadPoolExecutor(len(images)) as pool:
        got = list(pool.map(lambda im: segment_image(url, _png(im)), images))
    with TritonClient(url) as client:
        after = client.statistics("unet")
    runs = int(after["execution_count"]) - int(before.get("execution_count", 0))
    served = int(after["inference_count"]) - int(before.get("inference_count", 0))
    assert served == len(images) and runs < len(images)  # mixed sizes were batched (3 bucket shapes here)

    with load(demo_export, backend="ort", device="cpu") as runner:
        values = runner.manifest.mask_values
        agreement = []
        for image, png in zip(images, got):
            h, w = image.shape[:2]
            bh, bw = bucket_for(h, BUCKETS), bucket_for(w, BUCKETS)
            padded = np.pad(image, [(0, bh - h), (0, bw - w), (0, 0)], mode="edge")  # the rule, in image space
            want = mask_image(predict(runner, padded).mask[:h, :w], values, 3)
            with Image.open(io.BytesIO(png)) as served_mask:
                served_arr = np.asarray(served_mask)
            assert np.array_equal(served_arr, np.asarray(want))
            plain = np.asarray(mask_image(predict(runner, image).mask, values, 3))
            if (h, w) == (bh, bw):
                assert np.array_equal(served_arr, plain)  # no padding beyond the alignment: the same mask
            agreement.append(float((served_arr == plain).mean()))
    assert min(agreement) > 0.9, agreement  # only the context beyond the border changed


@pytest.mark.slow
def test_buckets_must_fit_a_tensorrt_models_profile(demo_export, tmp_path):
    from tests.helpers import trt_available
    from unetrt.cli.triton import triton_cmd
    from unetrt.serve.contract import read_contract

    if not trt_available():
        pytest.skip("needs tensorrt or tensorrt_rtx to build the engine")
    profile = read_contract(demo_export).engine().profiles[0]["input"]
    top = min(profile["max"][2:])
    base = [str(demo_export), "--platform", "tensorrt", "--with-preprocess", "--shape-buckets"]
    res = CliRunner().invoke(triton_cmd, base + [f"{top},{top + 1}", "-o", str(tmp_path / "bad")])
    assert res.exit_code != 0 and f"shape bucket {top + 1} exceeds the engine profile" in res.output
    assert not (tmp_path / "bad").exists()
    res = CliRunner().invoke(triton_cmd, base + [str(top), "-o", str(tmp_path / "ok")])
    assert res.exit_code == 0, res.output
