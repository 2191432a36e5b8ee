"""One small real export shared by the artifact-contract tests (milesial width 2, checkpoint, no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unetrt.exporter import ExportConfig, export
from unetrt.models import create_model


@pytest.fixture(scope="session")
def contract_export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract")
    torch.manual_seed(1)
    ckpt = root / "w.pth"
    torch.save(create_model("milesial", width=2, num_classes=3).state_dict(), ckpt)
    out = root / "export"
    export(ExportConfig(arch="milesial", model_kwargs={"width": 2, "num_classes": 3}, checkpoint=str(ckpt),
                        output_dir=str(out), align=16, engine=False))
    return out
