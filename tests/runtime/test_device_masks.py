"""Post-processing on the device for CUDA runners (runtime/device_masks.py, Segmenter): bit-identical to the
numpy path, and only uint8 labels come back to the host. torch CPU tensors stand in for device tensors."""

import numpy as np
import pytest
import torch

from unetrt.errors import InputError
from unetrt.runtime.base import InputConstraint, Runner, TensorMeta
from unetrt.runtime.device_masks import device_labels, resize_bilinear_like_numpy
from unetrt.runtime.masks import _sigmoid_above, logits_to_mask, resize_bilinear, sigmoid_cut
from unetrt.runtime.segment import Segmenter


class DeviceTensor(torch.Tensor):
    """A tensor that records every copy to the host (``cpu``, ``numpy``, ``__array__``, ``tolist``, ``item``,
    ``to(cpu)``), as a CUDA tensor would have to make one."""

    crossings: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        to_host = name in ("cpu", "numpy", "__array__", "tolist", "item") or (
            name == "to" and any(str(a) == "cpu" for a in [*args[1:], *kwargs.values()]))
        if to_host and isinstance(args[0], torch.Tensor):
            cls.crossings.append((name, args[0].dtype, tuple(args[0].shape)))
        return super().__torch_function__(func, types, args, kwargs)


class ConvRunner(Runner):
    """A small deterministic conv net behind the Runner contract: numpy out with ``to_host=True`` (and always
    when ``device=False``, like a CPU backend), :class:`DeviceTensor` out with ``to_host=False``."""

    def __init__(self, classes: int, device: bool, alignment: int = 8):
        super().__init__(f"conv-{classes}")
        self.classes, self.device, self.alignment = classes, device, alignment
        gen = torch.Generator().manual_seed(classes)
        self.weight = torch.randn(classes, 3, 3, 3, generator=gen)

    def _activate(self):
        self._inputs = {"input": InputConstraint("input", "float32", (None, 3, None, None), min_size=16,
                                                 alignment=self.alignment)}
        self._outputs = {"logits": TensorMeta("float32", (None, self.classes, None, None))}

    def _infer(self, feed, to_host):
        x = torch.from_numpy(feed["input"])
        y = torch.nn.functional.conv2d(x, self.weight, padding=1)
        y = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(y, 2), scale_factor=2.0)
        if to_host or not self.device:
            return {"logits": y.numpy()}
        return {"logits": y.as_subclass(DeviceTensor)}

    def _deactivate(self):
        pass


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in
            [(64, 64), (37, 53), (64, 64), (40, 120), (37, 53)]]


def test_device_resize_is_bit_identical_to_numpy():
    rng = np.random.default_rng(3)
    for h, w, H, W in [(64, 71, 128, 143), (48, 48, 97, 143), (13, 17, 200, 90), (97, 143, 31, 40), (32, 32, 32, 32)]:
        x = (rng.standard_normal((3, h, w)) * 20).astype(np.float32)
        got = resize_bilinear_like_numpy(torch.from_numpy(x), (H, W))
        assert got.dtype == torch.float32 and tuple(got.shape) == (3, H, W)
        np.testing.assert_array_equal(got.numpy(), resize_bilinear(x, (H, W)))


@pytest.mark.parametrize("classes", [1, 2, 5])
@pytest.mark.parametrize("size", [(40, 40), (83, 61), (17, 29)])
def test_device_labels_equal_logits_to_mask(classes, size):
    rng = np.random.default_rng(classes)
    logits = (rng.standard_normal((1, classes, 40, 40)) * 3).astype(np.float32)
    logits[0, :, 0, :5] = 0.0  # ties and the threshold's edge
    got = device_labels(torch.from_numpy(logits), size)
    assert got.dtype == torch.uint8 and tuple(got.shape) == size
    np.testing.assert_array_equal(got.numpy().astype(np.int64), logits_to_mask(logits, size))


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.9, 0.999, 1e-6, 0.0, 1.0, -0.5])
def test_sigmoid_cut_decides_like_the_float32_sigmoid(threshold):
    cut = sigmoid_cut(threshold)
    rng = np.random.default_rng(0)
    centre = np.float32(0.0 if cut is None or not np.isfinite(cut) else cut)
    bits = centre.view(np.int32) + np.arange(-20000, 20000, dtype=np.int32)
    near = bits.view(np.float32)
    near = near[np.isfinite(near)]
    values = np.concatenate([near, (rng.standard_normal(20000) * 30).astype(np.float32),
                             np.array([0.0, -0.0, 1e-30, -1e-30, 200, -200, np.inf, -np.inf], np.float32)])
    expected = _sigmoid_above(values, threshold)
    got = np.zeros_like(expected) if cut is None else values >= np.float32(cut)
    assert np.array_equal(got, expected)
    if threshold == 0.5:  # the float32 sigmoid rounds tiny positive logits to exactly 0.5: not above it
        assert cut > 0 and not _sigmoid_above(np.full(64, np.float32(1e-9)), 0.5)[0]


def test_device_labels_reject_a_batch():
    with pytest.raises(InputError, match="1xKxhxw or Kxhxw"):
        device_labels(torch.zeros(2, 3, 8, 8), (8, 8))


@pytest.mark.parametrize("classes,threshold", [(3, 0.5), (1, 0.5), (1, 0.8)])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_segmenter_device_path_equals_numpy_path_and_copies_only_labels(images, classes, threshold, scale):
    with ConvRunner(classes, device=False) as host, ConvRunner(classes, device=True) as dev:
        ref = Segmenter(host, scale=scale, mask_threshold=threshold)(images)
        DeviceTensor.crossings.clear()
        seg = Segmenter(dev, scale=scale, mask_threshold=threshold)
        got = seg(images)
        crossings = list(DeviceTensor.crossings)
        batched = seg.run([seg.prepare(images[0]), seg.prepare(images[2])])
    assert all(isinstance(b.logits, DeviceTensor) for b in batched)  # logits stay on the device
    assert [b.mode for b in batched] == ["batched x2"] * 2
    assert len(got) == len(ref) == len(images)
    for g, r, im in zip(got, ref, images):
        assert g.mask.dtype == r.mask.dtype == np.int64
        assert g.mask.shape == im.shape[:2]
        np.testing.assert_array_equal(g.mask, r.mask)
        assert g.logits_shape == r.logits_shape and g.mode == r.mode
    assert len(crossings) >= len(images)  # each image's labels came back ...
    assert {dtype for _, dtype, _ in crossings} == {torch.uint8}  # ... and nothing else did
    assert {shape for _, _, shape in crossings} == {im.shape[:2] for im in images}


def test_cpu_runner_keeps_the_numpy_path(images):
    with ConvRunner(3, device=False) as host:
        seg = Segmenter(host)
        out = seg.run([seg.prepare(images[1])])
    assert isinstance(out[0].logits, np.ndarray) and out[0].logits.dtype == np.float32
    assert out[0].mode == "aligned"  # 37x53 padded to the alignment, cropped back
