"""Eager PyTorch runner: the reference every other backend is compared with."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..artifacts.manifest import Manifest
from ..errors import RunnerError
from .base import InputConstraint, Runner, TensorMeta, apply_manifest_input

__all__ = ["TorchRunner"]

_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}


def _parse_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise RunnerError(f"unknown device {device!r} ({exc})", "'cpu', 'cuda' or 'cuda:N'", "fix device") from None
    if dev.type not in ("cpu", "cuda"):
        raise RunnerError(f"device {device!r} is not supported", "'cpu', 'cuda' or 'cuda:N'", "fix device")
    return dev


def build_from_checkpoint(path: str | os.PathLike, manifest: Manifest | None = None,
                          arch: str | None = None, model_kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Instantiate the architecture a manifest (or ``arch``) names and load the checkpoint's weights.

    Args:
        path: A ``.pth``/``.pt`` state dict or milesial checkpoint.
        manifest: Its ``manifest.json`` (the ``model`` section gives arch/factory and kwargs).
        arch: Zoo variant, overriding the manifest's.
        model_kwargs: Keyword arguments overriding the manifest's.

    Raises:
        RunnerError: Neither a manifest nor ``arch`` tells the architecture.
    """
    from ..artifacts.source import ModelSource

    section = manifest.model if manifest is not None else None
    kwargs = dict(section.kwargs if section else {})
    kwargs.update(model_kwargs or {})
    if arch or (section and section.arch):
        source = ModelSource(arch=arch or section.arch, kwargs=kwargs, checkpoint=os.fspath(path))
    elif section and section.factory:
        source = ModelSource(factory=section.factory, kwargs=kwargs, checkpoint=os.fspath(path))
    else:
        raise RunnerError(f"{os.fspath(path)} is a bare checkpoint: its architecture is unknown",
                          "a manifest.json beside it or arch=... (and model_kwargs)",
                          "pass arch='milesial' (see `unetrt models`) or export it first")
    from ..models import build_model

    return build_model(source)[0]


class TorchRunner(Runner):
    """Runs an ``nn.Module`` (or a checkpoint) eagerly under ``torch.inference_mode``.

    Args:
        model_or_path: A module, or a ``.pth``/``.pt`` checkpoint (the architecture comes from
            ``manifest`` or ``arch``/``model_kwargs``). A module that must change device or dtype is
            copied first, so the caller's module is never modified.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: ``"fp32"`` or ``"fp16"`` (CUDA only). Inputs and outputs stay float32.
        manifest: The export's :class:`~unetrt.artifacts.manifest.Manifest`; its ``input`` section sets min size and alignment.
        arch: Zoo variant of a checkpoint without a manifest.
        model_kwargs: Keyword arguments for ``arch``.
        input_name: Name of the single input.
        output_name: Name of the single output.
        name: Label for reports.

    Raises:
        RunnerError: ``precision="fp16"`` on CPU, an unknown device or precision.
    """

    def __init__(self, model_or_path: nn.Module | str | os.PathLike, device: str = "cpu", precision: str = "fp32",
                 *, manifest: Manifest | None = None, arch: str | None = None,
                 model_kwargs: Mapping[str, Any] | None = None, input_name: str = "input",
                 output_name: str = "logits", name: str | None = None):
        dev = _parse_device(device)
        super().__init__(name or f"torch-{dev.type}-{precision}", manifest)
        if precision not in _PRECISIONS:
            raise RunnerError(f"unknown precision {precision!r}", "'fp32' or 'fp16'", "fix precision")
        self.device = dev
        if precision == "fp16" and self.device.type != "cuda":
            raise RunnerError(f"precision 'fp16' on device {device!r}", "fp16 only with a CUDA device",
                              "use precision='fp32' on CPU, or device='cuda'")
        self.precision = precision
        if not isinstance(model_or_path, nn.Module) and not Path(model_or_path).is_file():
            raise RunnerError(f"checkpoint {os.fspath(model_or_path)} does not exist", "an existing .pth/.pt file",
                              "check the path")
        self._source = model_or_path
        self._arch, self._model_kwargs = arch, model_kwargs
        self.input_name, self.output_name = input_name, output_name
        self.model: nn.Module | None = None

    def _activate(self) -> None:
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RunnerError(f"{self.name} needs a CUDA GPU and none is visible to PyTorch",
                              "a CUDA build of torch and an NVIDIA GPU", "use device='cpu'")
        dtype = _PRECISIONS[self.precision]
        if isinstance(self._source, nn.Module):
            model = self._source
            param = next(model.parameters(), None)
            if param is not None and (param.device != self.device or param.dtype != dtype):
                model = copy.deepcopy(model)
        else:
            model = build_from_checkpoint(self._source, self.manifest, self._arch, self._model_kwargs)
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self._inputs = {self.input_name: self._constraint(self.model)}
        out_section = self.manifest.output if self.manifest else None
        classes = (out_section.classes if out_section else None) or \
            getattr(self.model, "config", {}).get("num_classes")
        spatial = (None,) * (len(self._inputs[self.input_name].shape) - 2)
        names = (out_section.names if out_section else None) or [self.output_name]
        self._outputs = {n: TensorMeta("float32", (None, classes if i == 0 else None, *spatial))
                         for i, n in enumerate(names)}

    def _constraint(self, model: nn.Module) -> InputConstraint:
        from ..models.geometry import input_channels, spatial_dims

        min_size, alignment = 1, 1
        arch = getattr(model, "config", {}).get("arch")
        if arch:
            from ..models import get_spec

            try:
                spec = get_spec(arch)
                min_size, alignment = spec.min_size, spec.alignment
            except KeyError:
                pass
        channels = input_channels(model)
        spatial = (None,) * spatial_dims(model)
        spec = InputConstraint(self.input_name, "float32", (None, channels, *spatial), min_size=min_size,
                               alignment=alignment)
        return apply_manifest_input(spec, self.manifest.input if self.manifest else None)

    def _infer(self, feed: dict[str, Any], to_host: bool) -> dict[str, Any]:
        value = feed[self.input_name]
        x = torch.from_numpy(value) if isinstance(value, np.ndarray) else value
        x = x.to(device=self.device, dtype=_PRECISIONS[self.precision])
        from torch.utils._pytree import tree_leaves

        with torch.inference_mode():
            out = self.model(x)
        ys = [t.float() for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if to_host or self.device.type == "cpu":
            ys = [y.cpu().numpy() for y in ys]
        # every output, named like the export (logits, logits_1, ... or the dict's keys)
        names = list(self._outputs) + [f"{self.output_name}_{i}" for i in range(len(self._outputs), len(ys))]
        return dict(zip(names, ys))

    def _deactivate(self) -> None:
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
