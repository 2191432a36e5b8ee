"""The ``nnunet`` section of ``manifest.json``: how nnU-Net preprocesses and predicts with an exported fold.

Written by ``unet-export --nnunet`` from the results folder's ``plans.json`` / ``dataset.json``; read by
the nnU-Net predictor (``unet-predict --nnunet-export``), which reproduces ``nnUNetPredictor`` from it.
"""

from __future__ import annotations

from typing import Optional, Union

from .section_config import Json, NonNegInt, PosInt, section

__all__ = ["NnunetResampling", "NnunetSection"]


@section
class NnunetResampling:
    """A resampling function of the plans.

    Attributes:
        function: nnU-Net's function name (``resample_data_or_seg_to_shape``).
        kwargs: Its keyword arguments (``is_seg``, ``order``, ``order_z``, ``force_separate_z``).
    """

    function: str
    kwargs: dict[str, Json]


@section
class NnunetSection:
    """An exported fold of an nnU-Net v2 model and the settings its prediction needs.

    Attributes:
        dataset_name: ``plans.json`` dataset_name.
        plans_name: ``plans.json`` plans_name.
        configuration: ``2d``, ``3d_fullres``, ``3d_lowres``...
        trainer: The trainer class that wrote the checkpoint.
        fold: The fold (an int, or ``"all"``).
        checkpoint: Checkpoint file name inside the fold folder.
        patch_size: Sliding-window tile size (spatial, after transpose_forward).
        spacing: Target spacing the network works at (after transpose_forward).
        transpose_forward: Axis order applied to images before preprocessing.
        transpose_backward: Its inverse, applied to predictions.
        channel_names: ``dataset.json`` channel_names (index -> name).
        normalization_schemes: One per channel (``CTNormalization``, ``ZScoreNormalization``, ...).
        use_mask_for_norm: Per channel: normalise inside the nonzero mask only.
        intensity_properties: Per channel (``"0"``, ...): the fingerprint's foreground mean, std, and
            0.5/99.5 percentiles (CT clipping).
        resampling_data: Resampling of the image to the target spacing.
        resampling_probabilities: Resampling of the logits back to the original spacing.
        labels: ``dataset.json`` labels (name -> label, or -> list of labels for regions).
        regions_class_order: Label written for each region channel (region-based datasets).
        mirror_axes: ``inference_allowed_mirroring_axes`` (``None``: no mirroring TTA).
        tile_step_size: Sliding-window step as a fraction of the patch size.
        use_gaussian: Gaussian importance weighting of the tiles.
        file_ending: Image file ending of the dataset (``.nii.gz``).
        image_reader_writer: nnU-Net's I/O class for the dataset (``SimpleITKIO``...).
        num_outputs: Segmentation heads of the network.
    """

    dataset_name: str
    plans_name: str
    configuration: str
    trainer: str
    fold: Union[NonNegInt, str]
    checkpoint: str
    patch_size: list[PosInt]
    spacing: list[float]
    transpose_forward: list[NonNegInt]
    transpose_backward: list[NonNegInt]
    channel_names: dict[str, str]
    normalization_schemes: list[str]
    use_mask_for_norm: list[bool]
    intensity_properties: dict[str, dict[str, float]]
    resampling_data: NnunetResampling
    resampling_probabilities: NnunetResampling
    labels: dict[str, Json]
    num_outputs: PosInt
    regions_class_order: Optional[list[int]] = None
    mirror_axes: Optional[list[NonNegInt]] = None
    tile_step_size: float = 0.5
    use_gaussian: bool = True
    file_ending: str = ".nii.gz"
    image_reader_writer: str = "SimpleITKIO"
