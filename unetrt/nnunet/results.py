"""Read a trained nnU-Net v2 results folder: plans, dataset, fingerprint and the fold checkpoints.

Checkpoints are read with ``weights_only=True``. nnU-Net's trainer stores numpy scalars in the
training log (``logging``, ``_best_ema``); those numpy reconstructors are allowed through torch's
``safe_globals`` while reading (:data:`CHECKPOINT_SAFE_GLOBALS`), nothing else is. Every problem is one
:class:`~unetrt.errors.ModelConfigError` / :class:`~unetrt.errors.CheckpointError` line naming the file.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import CheckpointError, ModelConfigError

__all__ = ["NnunetResults", "FoldCheckpoint", "read_results", "safe_checkpoint_globals", "REQUIRED_FILES"]

REQUIRED_FILES = ("plans.json", "dataset.json", "dataset_fingerprint.json")
DEFAULT_CHECKPOINT = "checkpoint_final.pth"
#: Trainer classes whose network is the plan's network (nnU-Net's own trainer and its variants).
TRAINER_PREFIX = "nnUNetTrainer"


def _numpy_globals() -> list[Any]:
    found: list[Any] = [np.dtype]
    core = getattr(np, "_core", None) or getattr(np, "core")
    found.append(core.multiarray.scalar)
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in ("Float64DType", "Float32DType", "Int64DType", "Int32DType",
                                                "BoolDType") if hasattr(dtypes, n)]
    return found


#: What nnU-Net checkpoints pickle besides tensors and containers: numpy scalars in the training log.
CHECKPOINT_SAFE_GLOBALS = _numpy_globals()


@contextlib.contextmanager
def safe_checkpoint_globals() -> Iterator[None]:
    """Allow numpy scalars (and nothing else) through ``torch.load(weights_only=True)``."""
    import torch

    with torch.serialization.safe_globals(CHECKPOINT_SAFE_GLOBALS):
        yield


@dataclass
class FoldCheckpoint:
    """One ``fold_<k>/<checkpoint>`` file.

    Attributes:
        fold: The fold (an int, or ``"all"``).
        path: The checkpoint file.
        state_dict: ``network_weights``.
        trainer: ``trainer_name``.
        configuration: ``init_args["configuration"]``.
        mirror_axes: ``inference_allowed_mirroring_axes`` (``None``: no mirroring).
    """

    fold: int | str
    path: Path
    state_dict: dict[str, Any]
    trainer: str
    configuration: str
    mirror_axes: list[int] | None


@dataclass
class NnunetResults:
    """A results folder, read and checked."""

    folder: Path
    plans: dict[str, Any]
    dataset: dict[str, Any]
    fingerprint: dict[str, Any]
    configuration: str
    folds: list[FoldCheckpoint] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        """The configuration's plan (``plans["configurations"][configuration]``, inheritance resolved)."""
        return resolve_configuration(self.plans, self.configuration, self.folder)

    @property
    def input_channels(self) -> int:
        names = self.dataset.get("channel_names", self.dataset.get("modality"))
        return len(names)

    @property
    def num_outputs(self) -> int:
        """Segmentation heads: one per region (region-based) or per label."""
        labels = {k: v for k, v in self.dataset["labels"].items() if k != "ignore"}  # no head for the ignore label
        if any(isinstance(v, (list, tuple)) for v in labels.values()):
            return len(self.dataset.get("regions_class_order") or [k for k in labels if k != "background"])
        return len(labels)

    @property
    def architecture(self) -> dict[str, Any]:
        return self.config["architecture"]

    @property
    def network_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`unetrt.nnunet.network.build_network` (JSON)."""
        arch = self.architecture
        return {"network_class_name": arch["network_class_name"], "arch_kwargs": arch["arch_kwargs"],
                "kw_requires_import": list(arch["_kw_requires_import"]), "input_channels": self.input_channels,
                "num_classes": self.num_outputs}


def _json(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    if not path.is_file():
        raise ModelConfigError(f"nnU-Net results folder {folder} has no {name}",
                               f"{', '.join(REQUIRED_FILES)} and fold_<k>/{DEFAULT_CHECKPOINT}",
                               "pass the folder nnU-Net trained into (nnUNet_results/DatasetXXX/"
                               "<trainer>__<plans>__<configuration>)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelConfigError(f"{path} is not readable JSON ({type(exc).__name__})", "the file nnU-Net wrote",
                               "restore it from the training output") from None
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path} holds a {type(data).__name__}", "a JSON object", "restore the file")
    return data


def resolve_configuration(plans: dict[str, Any], name: str, folder: Path | str = "") -> dict[str, Any]:
    """A configuration with nnU-Net's ``inherits_from`` applied."""
    configurations = plans.get("configurations") or {}
    if name not in configurations:
        raise ModelConfigError(f"configuration {name!r} is not in {Path(folder) / 'plans.json'}",
                               f"one of {', '.join(sorted(configurations)) or '(none)'}",
                               "pass --configuration with one of those")
    config = dict(configurations[name])
    parent = config.pop("inherits_from", None)
    if parent:
        config = {**resolve_configuration(plans, parent, folder), **config}
    return config


def _fold_dirs(folder: Path, checkpoint: str) -> list[int | str]:
    found: list[int | str] = []
    for d in sorted(folder.glob("fold_*")):
        m = re.fullmatch(r"fold_(\d+|all)", d.name)
        if m and (d / checkpoint).is_file() and m.group(1) != "all":
            found.append(int(m.group(1)))
    return sorted(found, key=lambda f: (isinstance(f, str), f))


def _read_checkpoint(path: Path, fold: int | str) -> FoldCheckpoint:
    import pickle

    import torch

    if not path.is_file():
        raise CheckpointError(f"nnU-Net fold {fold} has no checkpoint {path}",
                              "fold_<k>/checkpoint_final.pth written by nnU-Net",
                              "check --folds and --checkpoint (folds present: fold_<k> folders)")
    try:
        with safe_checkpoint_globals():
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = " ".join(str(exc).split("WeightsUnpickler error:")[-1].split())[:160]
        raise CheckpointError(f"checkpoint {path} holds objects weights_only loading refuses ({detail})",
                              "an nnU-Net checkpoint (tensors, containers, numpy scalars)",
                              "re-save it from nnU-Net") from None
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is not a readable torch file ({type(exc).__name__})",
                              "a file written by torch.save", "re-download or re-save it") from None
    missing = [k for k in ("network_weights", "init_args", "trainer_name") if k not in (ckpt or {})]
    if not isinstance(ckpt, dict) or missing:
        raise CheckpointError(f"checkpoint {path} is not an nnU-Net checkpoint (no {', '.join(missing)})",
                              "a dict with network_weights, init_args and trainer_name",
                              "pass the checkpoint nnU-Net's trainer saved")
    axes = ckpt.get("inference_allowed_mirroring_axes")
    return FoldCheckpoint(fold=fold, path=path, state_dict=ckpt["network_weights"], trainer=str(ckpt["trainer_name"]),
                          configuration=str(ckpt["init_args"].get("configuration")),
                          mirror_axes=None if axes is None else [int(a) for a in axes])


def read_results(folder: str | Path, configuration: str | None = None, folds: list[int | str] | None = None,
                 checkpoint: str = DEFAULT_CHECKPOINT) -> NnunetResults:
    """Read and check a results folder.

    Args:
        folder: The trained model folder.
        configuration: Expected configuration (``None``: the one the checkpoints were trained with).
        folds: Folds to use (``None``: every ``fold_<k>`` holding ``checkpoint``).
        checkpoint: Checkpoint file name inside each fold folder.

    Raises:
        ModelConfigError: A missing or malformed JSON file, an unknown configuration, trainer or network
            class, a cascade stage, or folds that disagree.
        CheckpointError: A missing, unreadable or non-nnU-Net checkpoint, or one of another configuration.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ModelConfigError(f"nnU-Net results folder {root} does not exist", "a trained model folder",
                               "check the path given to --nnunet")
    plans, dataset, fingerprint = (_json(root, n) for n in REQUIRED_FILES)
    for key in ("labels", "file_ending"):
        if key not in dataset:
            raise ModelConfigError(f"{root / 'dataset.json'} has no {key!r}", "dataset.json written by nnU-Net v2",
                                   "restore it from nnUNet_raw")
    if "channel_names" not in dataset and "modality" not in dataset:
        raise ModelConfigError(f"{root / 'dataset.json'} has no 'channel_names'", "dataset.json of nnU-Net v2",
                               "restore it from nnUNet_raw")
    if configuration is not None:
        resolve_configuration(plans, configuration, root)  # an unknown name fails before any checkpoint is read
    wanted = folds if folds is not None else _fold_dirs(root, checkpoint)
    if not wanted:
        raise CheckpointError(f"nnU-Net results folder {root} has no fold_<k>/{checkpoint}",
                              "at least one trained fold", "train a fold, or pass --checkpoint with the file name")
    read = [_read_checkpoint(root / f"fold_{f}" / checkpoint, f) for f in wanted]
    first = read[0]
    name = configuration or first.configuration
    for ck in read:
        if ck.configuration != name:
            raise CheckpointError(f"checkpoint {ck.path} was trained for configuration {ck.configuration!r}, "
                                  f"not {name!r}", f"checkpoints of configuration {name!r}",
                                  f"pass --configuration {ck.configuration} or the results folder of {name}")
        if not ck.trainer.startswith(TRAINER_PREFIX):
            raise ModelConfigError(f"checkpoint {ck.path} was trained by {ck.trainer!r}, an unknown trainer class",
                                   f"{TRAINER_PREFIX} or one of its variants (their network is the plan's)",
                                   "export the network of a custom trainer with unet-export --model")
        if ck.trainer != first.trainer or ck.mirror_axes != first.mirror_axes:
            raise ModelConfigError(f"fold {ck.fold} differs from fold {first.fold} (trainer or mirroring axes)",
                                   "folds of one training run", "pass --folds with folds of one run")
    results = NnunetResults(root, plans, dataset, fingerprint, name, read)
    config = results.config
    if config.get("previous_stage") or config.get("previous_stage_name"):
        raise ModelConfigError(f"configuration {name!r} is a cascade stage (needs the previous stage's "
                               "segmentation)", "a single-stage configuration (2d, 3d_fullres, 3d_lowres)",
                               "export 3d_fullres or 3d_lowres instead")
    for key in ("patch_size", "spacing", "normalization_schemes", "architecture"):
        if key not in config:
            raise ModelConfigError(f"configuration {name!r} of {root / 'plans.json'} has no {key!r}",
                                   "plans.json written by nnU-Net v2", "re-run nnUNetv2_plan_and_preprocess")
    if len(config["normalization_schemes"]) != results.input_channels:
        raise ModelConfigError(f"plans.json has {len(config['normalization_schemes'])} normalization schemes for "
                               f"{results.input_channels} channels", "one scheme per channel", "restore plans.json")
    return results
