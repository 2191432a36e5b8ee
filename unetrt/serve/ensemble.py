"""The ``<name>_image`` ensemble: PNG/JPEG bytes in, PNG mask bytes out.

Three steps: ``<name>_preprocess`` (decode, milesial's preprocessing, pad to the alignment),
the segmentation model, ``<name>_postprocess`` (crop, bilinear resize to the image size,
argmax or sigmoid threshold, ``mask_values``, PNG encoding), so the mask equals the file
``unet-predict`` writes for the same image.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ServeError
from . import configs
from .contract import Contract
from .layout import PYTHON_SHIM, RepositoryPlan, write_config

IMAGE_IN, MASK_OUT = "IMAGE", "MASK"


def write_ensemble(stage: Path, name: str, model: str, contract: Contract, plan: RepositoryPlan, *,
                   scale: float, mask_threshold: float, device: str, instances: int,
                   shape_buckets: tuple[int, ...] = ()) -> None:
    """Write ``<name>_preprocess``, ``<name>_postprocess`` and the ``<name>_image`` ensemble over ``model``.

    ``shape_buckets`` (checked by :func:`~unetrt.serve.buckets.bucket_parameters`) makes the preprocessing pad
    each image up to the nearest bucket so mixed sizes batch (see :mod:`unetrt.serve.buckets`).

    Raises:
        ServeError: A valid-convolution export, a static batch axis, or a bad scale/threshold.
    """
    if contract.geometry != "same":
        raise ServeError(f"--with-preprocess for a {contract.geometry}-geometry export",
                         "an export whose output has the input's size (geometry 'same')",
                         "use unet-predict (overlap-tile inference) for valid-convolution models")
    if plan.configs[model].max_batch_size < 1:
        raise ServeError("--with-preprocess for an export with a static batch axis", "a dynamic batch axis",
                         "re-export with a dynamic batch")
    if not scale > 0 or not 0 <= mask_threshold <= 1:
        raise ServeError(f"scale={scale}, mask_threshold={mask_threshold}", "scale > 0, threshold in [0, 1]",
                         "fix --scale / --mask-threshold")
    params = dict(contract.parameters(), **{"unetrt.scale": json.dumps(scale),
                                            "unetrt.mask_threshold": json.dumps(mask_threshold)})
    if shape_buckets:
        from .buckets import bucket_parameters

        params.update(bucket_parameters(shape_buckets, contract, plan.configs[model]))
    c, k = contract.channels, contract.classes
    image = configs.TensorSpec(IMAGE_IN, "uint8", (-1,))  # the file's bytes (UINT8, not BYTES: see triton_models)
    mask = configs.TensorSpec(MASK_OUT, "uint8", (-1,))
    size = configs.TensorSpec("SIZE", "int64", (4,))
    pre = configs.model_config(f"{name}_preprocess", inputs=[image],
                               outputs=[configs.TensorSpec("INPUT", contract.input_dtype, (c, -1, -1)), size],
                               max_batch_size=1, backend="python", instances=instances, dynamic_batching=False,
                               parameters=params)
    post = configs.model_config(f"{name}_postprocess",
                                inputs=[configs.TensorSpec("LOGITS", contract.output_dtype, (k, -1, -1)), size],
                                outputs=[mask], max_batch_size=1, backend="python", instances=instances,
                                dynamic_batching=False, parameters=params)
    for config, cls, doc in ((pre, "PreprocessModel", "image bytes -> preprocessed, aligned input."),
                             (post, "PostprocessModel", "logits -> PNG mask bytes.")):
        folder = write_config(stage, config, plan)
        (folder / "1" / "model.py").write_text(PYTHON_SHIM.format(doc=doc, cls=cls))
    steps = [(pre.name, {IMAGE_IN: IMAGE_IN}, {"INPUT": "preprocessed", "SIZE": "size"}),
             (model, {contract.input_name: "preprocessed"}, {contract.output_name: "logits"}),
             (post.name, {"LOGITS": "logits", "SIZE": "size"}, {MASK_OUT: MASK_OUT})]
    ens = configs.ensemble_config(f"{name}_image", inputs=[image], outputs=[mask], max_batch_size=1, steps=steps)
    write_config(stage, ens, plan)
    plan.models.update({"image": ens.name, "preprocess": pre.name, "postprocess": post.name})
    plan.notes.append(f"{ens.name}: post the image file's bytes as {IMAGE_IN} (UINT8, shape [1, n]); {MASK_OUT} "
                      f"(UINT8 [1, n]) holds the PNG file unet-predict writes (scale {scale:g})")
    if shape_buckets:
        plan.notes.append(f"{pre.name} pads H and W up to the shape buckets {', '.join(map(str, shape_buckets))} "
                          f"so mixed-size requests batch in {model}; the mask is cropped back")
