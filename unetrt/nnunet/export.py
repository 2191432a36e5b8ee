"""``unet-export --nnunet RESULTS_DIR``: every fold of a trained nnU-Net through the regular export chain.

Each fold becomes a complete unetrt export directory (``<output>/fold_<k>/``: ONNX, optional FP16/INT8
ONNX and TensorRT engine, ``manifest.json``) whose manifest carries the ``nnunet`` section
(:class:`~unetrt.artifacts.manifest.NnunetSection`): the preprocessing and inference settings the
nnU-Net predictor needs. The model is the plan's network (:func:`unetrt.nnunet.network.build_network`,
recorded as the factory) with the fold's checkpoint. The folds are staged beside the output and moved
in only when every fold exported, so a failure leaves nothing behind.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from ..artifacts.manifest import Manifest, NnunetResampling, NnunetSection
from ..errors import terminate_as_interrupt
from ..exporter.config import ExportConfig
from ..exporter.staging import OutputLock, Staging
from ..fileio import check_output_dir
from .network import FACTORY, build_network
from .results import DEFAULT_CHECKPOINT, NnunetResults, read_results, safe_checkpoint_globals

__all__ = ["export_nnunet", "nnunet_section", "with_patch_profile", "PROFILE_BATCH"]

#: Max batch of the engine profile written for nnU-Net folds (the predictor's default tiles x mirrors per call).
PROFILE_BATCH = 8

COPIED = ("plans.json", "dataset.json", "dataset_fingerprint.json")


def nnunet_section(results: NnunetResults, fold: int | str, checkpoint: str) -> NnunetSection:
    """The manifest section of one fold."""
    plans, config, dataset = results.plans, results.config, results.dataset
    ck = next(f for f in results.folds if f.fold == fold)
    intensity = plans.get("foreground_intensity_properties_per_channel") or \
        results.fingerprint.get("foreground_intensity_properties_per_channel") or {}
    default_rs = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    names = dataset.get("channel_names", dataset.get("modality"))
    return NnunetSection(
        dataset_name=str(plans.get("dataset_name", "")), plans_name=str(plans.get("plans_name", "")),
        configuration=results.configuration, trainer=ck.trainer, fold=fold, checkpoint=checkpoint,
        patch_size=[int(p) for p in config["patch_size"]], spacing=[float(s) for s in config["spacing"]],
        transpose_forward=[int(a) for a in plans.get("transpose_forward", [0, 1, 2])],
        transpose_backward=[int(a) for a in plans.get("transpose_backward", [0, 1, 2])],
        channel_names={str(k): str(v) for k, v in names.items()},
        normalization_schemes=list(config["normalization_schemes"]),
        use_mask_for_norm=[bool(u) for u in config.get("use_mask_for_norm", [False] * results.input_channels)],
        intensity_properties={str(c): {k: float(v) for k, v in props.items()} for c, props in intensity.items()},
        resampling_data=NnunetResampling(config.get("resampling_fn_data", "resample_data_or_seg_to_shape"),
                                         dict(config.get("resampling_fn_data_kwargs", default_rs))),
        resampling_probabilities=NnunetResampling(
            config.get("resampling_fn_probabilities", "resample_data_or_seg_to_shape"),
            dict(config.get("resampling_fn_probabilities_kwargs", {**default_rs, "order": 1}))),
        labels=dict(dataset["labels"]), num_outputs=results.num_outputs,
        regions_class_order=dataset.get("regions_class_order"), mirror_axes=ck.mirror_axes,
        file_ending=str(dataset["file_ending"]), image_reader_writer=str(plans.get("image_reader_writer", "SimpleITKIO")))


def with_patch_profile(base: ExportConfig, results: NnunetResults, batch: int = PROFILE_BATCH) -> ExportConfig:
    """``base`` with one engine profile at the patch size (batch 1..``batch``) unless engines are off or
    profiles were given: the predictor only feeds patch-size tiles, so the engine is tuned for exactly those."""
    from ..artifacts.profiles import ShapeProfile
    from ..exporter.onnx_io import INPUT_NAME

    options = base.engine_options
    if options.build is False or options.profiles:
        return base
    patch = [int(p) for p in results.config["patch_size"]]
    c = results.input_channels
    profile = ShapeProfile((1, c, *patch), (batch, c, *patch), (batch, c, *patch))
    return replace_config(base, engine_options=replace(options, profiles=[{INPUT_NAME: profile}]))


def _check_network(results: NnunetResults) -> None:
    """Build the network and apply every fold's weights before any export starts (one clear line on failure)."""
    from ..models.checkpoint import apply_checkpoint

    net = build_network(**results.network_kwargs)
    net.config = {"factory": FACTORY}
    for ck in results.folds:
        state = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in ck.state_dict.items()}
        apply_checkpoint(net, state)


def export_nnunet(results_dir: str | Path, output_dir: str | Path, *, configuration: str | None = None,
                  folds: list[int | str] | None = None, checkpoint: str = DEFAULT_CHECKPOINT,
                  base: ExportConfig | None = None, progress: Callable[[str], None] | None = None) -> list[Any]:
    """Export every fold of an nnU-Net results folder into ``output_dir/fold_<k>``.

    Args:
        results_dir: The trained model folder (``plans.json``, ``dataset.json``, ``fold_<k>/``).
        output_dir: New or empty directory (``base.force`` replaces its folds).
        configuration: Expected configuration (``None``: the checkpoints' own).
        folds: Folds (``None``: every fold holding ``checkpoint``).
        checkpoint: Checkpoint file name in each fold folder.
        base: Export options (FP16, INT8, engine, static shape...) applied to every fold; its model
            fields and output directory are set here. Without engine profiles, engines get one at the
            patch size (:func:`with_patch_profile`).
        progress: Called with a short message per step.

    Returns:
        The :class:`~unetrt.exporter.pipeline.ExportResult` of each fold (paths inside ``output_dir``).

    Raises:
        UnetrtError: A bad results folder or a failed export step; ``output_dir`` is left as it was.
    """
    from ..exporter.pipeline import export

    step = progress or (lambda _m: None)
    results = read_results(results_dir, configuration, folds, checkpoint)
    _check_network(results)
    base = with_patch_profile(base or ExportConfig(), results)
    target = check_output_dir(output_dir, base.force)
    done = []
    with terminate_as_interrupt(), OutputLock(target), Staging(target) as staging, safe_checkpoint_globals():
        for ck in results.folds:
            step(f"fold {ck.fold}: exporting")
            config = replace_config(base, factory=FACTORY, arch=None, model_kwargs=results.network_kwargs,
                                    checkpoint=str(ck.path.resolve()), output_dir=str(staging.path / f"fold_{ck.fold}"),
                                    force=False)
            result = export(config, progress=lambda m, f=ck.fold: step(f"fold {f}: {m}"))
            manifest: Manifest = result.manifest
            manifest.nnunet = nnunet_section(results, ck.fold, checkpoint)
            manifest.write(result.output_dir)
            done.append((ck.fold, result))
        for name in COPIED:
            shutil.copyfile(results.folder / name, staging.path / name)
        for fold, _ in done:
            old = target / f"fold_{fold}"
            if old.exists():
                shutil.rmtree(old)
        staging.commit()
    return [replace(r, output_dir=target / f"fold_{f}", files=[target / f"fold_{f}" / p.name for p in r.files])
            for f, r in done]


def replace_config(base: ExportConfig, **fields: Any) -> ExportConfig:
    """A copy of ``base`` with ``fields`` set (its option groups shared, they are not mutated)."""
    kwargs = {name: getattr(base, name) for name in base.__dataclass_fields__}
    kwargs.update(fields)
    return ExportConfig(**kwargs)
