"""Every CUDA / TensorRT EP option key unetrt can emit is a key of the real onnxruntime-gpu wheel.

The keys were read out of the pinned wheel's provider libraries by ``scripts/ort_ep_options.py`` (version
and sha256 in the fixture); ``onnxruntime-gpu``'s parsers throw on any other key (``Invalid TensorRT EP
option``, ``Unknown provider option``), which a CPU-only onnxruntime never shows."""

from __future__ import annotations

import ast
import configparser
import json
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from unetrt.runtime import backend_table
from unetrt.runtime.backend_spec import RunOptions
from unetrt.runtime.ort import TRT_EP_UNPREFIXED, _provider_options

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "ort_ep_options.json").read_text())
TRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"


def wheel_keys(provider: str) -> set[str]:
    entry = FIXTURE[provider]
    return set(entry["keys"]) | set(entry.get("tail_keys", ()))


def emitted_keys(tmp_path) -> dict[str, set[str]]:
    """What ``_provider_options`` produces on every path the code takes: the keys it adds itself (caches,
    TF32, the user stream), the backend table's options, and the unprefixed names it passes through."""
    out: dict[str, set[str]] = {TRT: set(), CUDA: set()}
    trt_inputs = [None, {"engine_cache_path": str(tmp_path / "e"), "timing_cache_path": str(tmp_path / "t")},
                  {name: "0" for name in TRT_EP_UNPREFIXED}]
    run = RunOptions(cache_dir=str(tmp_path / "c"))
    for backend in backend_table.BUILTIN:
        if backend.adapt is not None and backend.family == "ort":
            extra = backend.adapt(run)
            trt_inputs.append(extra.get("trt_options"))
    for trt_options in trt_inputs:
        for stream in (None, 1234):
            for tf32 in (False, True):
                out[TRT] |= set(_provider_options(TRT, trt_options, None, tf32, stream))
                out[CUDA] |= set(_provider_options(CUDA, None, None, tf32, stream))
    return out


def literal_keys() -> set[str]:
    """``trt_*`` string literals in the ORT runner's source (keys it could emit on a path not run above)."""
    tree = ast.parse((ROOT / "unetrt" / "runtime" / "ort.py").read_text())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and re.fullmatch(r"trt_[a-z0-9_]+", n.value) and n.value != "trt_options"}


def test_fixture_is_the_pinned_wheel():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    gpu = [Requirement(s.strip()) for s in cfg["options.extras_require"]["gpu"].splitlines() if s.strip()]
    ort = next(r for r in gpu if r.name == "onnxruntime-gpu")
    assert ort.specifier.contains(FIXTURE["version"]), f"fixture {FIXTURE['version']} vs [gpu] {ort}"
    assert re.fullmatch(r"[0-9a-f]{64}", FIXTURE["sha256"])
    assert FIXTURE["wheel"].startswith(f"onnxruntime_gpu-{FIXTURE['version']}-")
    # the wheel's TensorRT EP links TensorRT 10 (what the [gpu] extra pins)
    assert FIXTURE[TRT]["links"] == ["libnvinfer.so.10", "libnvonnxparser.so.10"]


@pytest.mark.parametrize("provider", [TRT, CUDA])
def test_every_emitted_key_is_in_the_wheel(provider, tmp_path):
    keys = emitted_keys(tmp_path)[provider] | (literal_keys() if provider == TRT else set())
    assert keys, "nothing emitted: the enumeration is broken"
    unknown = sorted(keys - wheel_keys(provider))
    assert not unknown, (f"{provider} options {unknown} are not keys of onnxruntime-gpu {FIXTURE['version']} "
                         f"(its parser: {FIXTURE[provider]['rejects_unknown']!r})")


def test_has_user_compute_stream_is_a_cuda_key_only(tmp_path):
    assert "has_user_compute_stream" not in wheel_keys(TRT)
    assert "has_user_compute_stream" in wheel_keys(CUDA)
    assert {"user_compute_stream", "device_id"} <= wheel_keys(TRT)
    assert "has_user_compute_stream" not in emitted_keys(tmp_path)[TRT]


def test_the_check_catches_a_key_the_wheel_lacks():
    opts = _provider_options(TRT, {"fp16_enable": True, "int8_use_native_calibration_table": True,
                                   "not_an_option": 1}, None)
    assert set(opts) - wheel_keys(TRT) == {"trt_not_an_option"}
