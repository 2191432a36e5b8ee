"""Shared artifacts for the runtime tests: one small aligned milesial export (FP32 + FP16 ONNX).

Built once per session (~5 s): a width-4 milesial with seeded weights saved as a checkpoint, exported
with ``align=16`` so alignment refusals can be tested on every backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from unetrt.exporter import ExportConfig, export
from unetrt.artifacts.manifest import Manifest
from unetrt.models import create_model

ALIGN = 16
IN_CHANNELS = 3
CLASSES = 2


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    """An export directory: model.onnx, model_fp16.onnx, manifest.json (fp16 section added), no engine.

    The engine is left out so the tests behave the same with or without TensorRT; engine tests add
    their own.
    """
    from unetrt.exporter.fp16 import convert_fp16

    root = tmp_path_factory.mktemp("runtime_export")
    torch.manual_seed(0)
    model = create_model("milesial", width=4)
    ckpt = root / "weights.pth"
    torch.save(model.state_dict(), ckpt)
    out = root / "export"
    export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, checkpoint=str(ckpt), output_dir=str(out),
                        align=ALIGN, verify=False, engine=False))
    rng = np.random.default_rng(0)
    feeds = [{"input": rng.random((1, IN_CHANNELS, 32, 48), dtype=np.float32)}]
    convert_fp16(out / "model.onnx", out / "model_fp16.onnx", feeds=feeds)
    _add_artifact(out, "model_fp16.onnx", section="fp16")
    return out


def _add_artifact(directory: Path, name: str, section: str | None = None, **fields) -> None:
    """Record a file in manifest.json as the exporter does (sha256 in ``artifacts`` and a section)."""
    from unetrt.fileio import sha256_file

    manifest = json.loads((directory / "manifest.json").read_text())
    sha = sha256_file(directory / name)
    manifest["artifacts"].append({"path": name, "sha256": sha, "bytes": (directory / name).stat().st_size})
    if section == "engines":
        manifest.setdefault("engines", []).append({"path": name, "sha256": sha, **fields})
    elif section:
        manifest[section] = {"path": name, "sha256": sha, **fields}
    Manifest.with_defaults(manifest).write(directory)  # fills defaults, validates types


@pytest.fixture
def add_artifact():
    """``add_artifact(directory, name, section=None, **fields)``: list a file in a manifest."""
    return _add_artifact


@pytest.fixture(scope="session")
def eager_model(export_dir) -> nn.Module:
    """The exported model in eager PyTorch (the reference)."""
    manifest = Manifest.read(export_dir)
    model = create_model("milesial", width=4)
    model.load_state_dict(torch.load(manifest.model.checkpoint.path, weights_only=True))
    return model.eval()


@pytest.fixture
def sample() -> np.ndarray:
    return np.random.default_rng(3).random((2, IN_CHANNELS, 32, 48), dtype=np.float32)


def gpu_flavour_or_skip() -> str:
    """The TensorRT flavour that can build for this GPU, or a skip saying why (an RTX-only install on an
    SM90 GPU cannot: TensorRT-RTX has no SM90 target)."""
    from unetrt.runtime.engine_choice import flavour_here

    flavour, why = flavour_here()
    if flavour is None:
        pytest.skip(why)
    return flavour
