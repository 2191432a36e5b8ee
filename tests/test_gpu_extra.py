"""The ``[gpu]`` extra pins one consistent CUDA / TensorRT set (checked from the installed metadata and from
setup.cfg): ONNX Runtime GPU's TensorRT EP must find the libnvinfer major that the pinned TensorRT ships."""

from __future__ import annotations

import configparser
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
#: onnxruntime-gpu minor -> (libnvinfer major its TensorRT EP links, CUDA major of its CUDA EP), read from the
#: wheels' ELF NEEDED entries (1.31.1: libnvinfer.so.10, libcudart.so.13, libcublas.so.13, libcudnn.so.9).
ORT_GPU_LINKS = {(1, 31): (10, 13)}


def _from_setup_cfg() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.extras_require"]["gpu"].strip().splitlines()
    return [Requirement(line.strip()) for line in lines if line.strip() and not line.strip().startswith("#")]


def _from_metadata() -> list[Requirement] | None:
    try:
        requires = metadata.requires("unetrt") or []
    except metadata.PackageNotFoundError:
        return None
    out = []
    for text in requires:
        req = Requirement(text)
        if req.marker is not None and req.marker.evaluate({"extra": "gpu"}) and \
                not req.marker.evaluate({"extra": ""}):
            req.marker = None
            out.append(req)
    return out


def _sources():
    yield "setup.cfg", _from_setup_cfg()
    installed = _from_metadata()
    if installed is not None:
        yield "installed metadata", installed


def _majors(spec) -> set[int]:
    return {m for m in range(0, 40) if any(spec.contains(f"{m}.{n}.0", prereleases=True) for n in range(0, 100))}


@pytest.mark.parametrize("source, reqs", list(_sources()), ids=lambda v: v if isinstance(v, str) else "")
def test_gpu_extra_majors_agree(source, reqs):
    by_name = {r.name.lower(): r for r in reqs}
    ort = by_name.get("onnxruntime-gpu")
    assert ort is not None, f"{source}: no onnxruntime-gpu in [gpu]"
    assert {"cuda", "cudnn"} <= ort.extras, f"{source}: onnxruntime-gpu needs its [cuda,cudnn] extras"
    minors = {k for k in ORT_GPU_LINKS if ort.specifier.contains(f"{k[0]}.{k[1]}.1")}
    assert minors and not ort.specifier.contains("1.32.0"), f"{source}: {ort} must stay on a known minor"
    trt_major, cuda_major = {ORT_GPU_LINKS[k] for k in minors}.pop()
    trt = [r for r in reqs if re.fullmatch(r"tensorrt(-cu\d+)?", r.name.lower())]
    assert len(trt) == 1, f"{source}: exactly one TensorRT requirement, got {trt}"
    assert _majors(trt[0].specifier) == {trt_major}, f"{source}: {trt[0]} vs libnvinfer.so.{trt_major}"
    assert trt[0].name.lower() == f"tensorrt-cu{cuda_major}", f"{source}: TensorRT for CUDA {cuda_major}"
    cublas = by_name.get("nvidia-cublas")
    assert cublas is not None and _majors(cublas.specifier) == {cuda_major}, f"{source}: cuBLAS {cuda_major}"
