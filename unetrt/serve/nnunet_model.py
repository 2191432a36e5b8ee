"""The whole nnU-Net pipeline behind Triton: a volume (+ its spacing) in, a label map out.

``unetrt triton EXPORT -o REPO`` writes this model when ``EXPORT`` is an ``unet-export --nnunet`` directory
(``fold_<k>/manifest.json`` with an ``nnunet`` section)::

    REPO/<name>/config.pbtxt                     backend: python, max_batch_size 0
    REPO/<name>/1/model.py                       imports NnunetModel below
    REPO/<name>/1/fold_<k>/ + plans.json ...     the export, as written
    REPO/unetrt_repository.json

Inputs ``IMAGE`` (FP32 ``[C, Z, Y, X]``, the channels of one case in file axis order, as nnU-Net's
readers return them) and ``SPACING`` (FP32 ``[3]``, z/y/x); output ``SEGMENTATION`` (UINT8 ``[Z, Y, X]``).
Each instance runs :class:`~unetrt.nnunet.predict.NnunetPredictor` over one runner per fold (ONNX Runtime
on CPU instances; on GPU ones the export's best backend): preprocessing, batched sliding window with
mirroring, fold ensembling and the mapping back all happen inside the model, so a client sends the
volume it read from disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError, ServeError, UnetrtError
from . import configs
from .triton_models import _PythonModel, tensor_in, tensor_out

__all__ = ["NnunetModel", "is_nnunet_export", "write_nnunet_repository", "IMAGE", "SPACING", "SEGMENTATION"]

IMAGE, SPACING, SEGMENTATION = "IMAGE", "SPACING", "SEGMENTATION"
_SHIM = '''"""Triton python-backend model written by `unetrt triton`: the nnU-Net pipeline (volume in, labels out)."""

from unetrt.serve.nnunet_model import NnunetModel as TritonPythonModel  # noqa: F401
'''


class NnunetModel(_PythonModel):
    """``IMAGE`` + ``SPACING`` -> ``SEGMENTATION`` with the unetrt nnU-Net predictor (see the module docstring)."""

    def setup(self, args: dict[str, str]) -> None:
        from ..nnunet.predict import NnunetPredictor

        gpu, kw = self.placement(args)
        self.predictor = NnunetPredictor.from_export(
            self.version_dir, "auto" if gpu else "ort", "cuda" if gpu else "cpu",
            batch_size=int(self.params.get("unetrt.nnunet.batch_size") or 8),
            use_mirroring=self.params.get("unetrt.nnunet.mirroring", "true") == "true", **kw)
        self.predictor.__enter__()

    def execute(self, requests: list) -> list:
        """One case per request (no batching: volumes differ in size)."""
        pb, out = self.pb, []
        for request in requests:
            try:
                image = np.asarray(tensor_in(pb, request, IMAGE), np.float32)
                spacing = [float(s) for s in np.asarray(tensor_in(pb, request, SPACING)).ravel()]
                seg, _ = self.predictor.predict(image, spacing)
            except UnetrtError as exc:
                out.append(self.error(str(exc)))
                continue
            out.append(pb.InferenceResponse(output_tensors=[tensor_out(pb, SEGMENTATION, seg.astype(np.uint8))]))
        return out

    def finalize(self) -> None:
        self.predictor.__exit__(None, None, None)


def is_nnunet_export(export_dir: str | os.PathLike) -> bool:
    """Whether ``export_dir`` was written by ``unet-export --nnunet`` (folds, no top-level manifest)."""
    root = Path(export_dir).expanduser()
    return not (root / "manifest.json").is_file() and any(root.glob("fold_*/manifest.json"))


def write_nnunet_repository(export_dir: str | os.PathLike, repo: str | os.PathLike, *, name: str = "nnunet",
                            platforms: Any = "python", with_preprocess: bool = False, device: str = "cpu",
                            instances: int = 1, threads: int | None = None, batch_size: int = 8,
                            use_mirroring: bool = True, force: bool = False, **_ignored: Any):
    """Write a repository serving the whole nnU-Net pipeline of an ``unet-export --nnunet`` directory.

    Args:
        export_dir: The nnU-Net export (``fold_<k>/`` + the results folder's JSON files).
        repo: The repository directory to create (replaced only with ``force``).
        name: Model name.
        platforms: Only ``"python"`` (the pipeline is a python-backend model).
        with_preprocess: Must be false (the model already takes a raw volume).
        device: ``"cpu"`` or ``"gpu"`` instances.
        instances: Instances per device.
        threads: ONNX Runtime intra-op threads per fold runner on CPU instances.
        batch_size: Network inputs per runner call (tiles x mirrored copies).
        use_mirroring: Mirroring test-time augmentation (nnU-Net's default: on).
        force: Replace an existing non-empty ``repo``.

    Returns:
        The :class:`~unetrt.serve.repository.RepositoryPlan` written.

    Raises:
        ServeError: Another platform, ``with_preprocess``, a bad device, or an export that is not nnU-Net's.
        OutputError: ``repo`` is a file, non-empty without ``force``, or overlaps the export.
    """
    from ..nnunet.predict import export_sections
    from .contract import read_contract
    from .layout import RepositoryPlan, check_target, staged_repository, write_config

    kinds = [platforms] if isinstance(platforms, str) else list(platforms)
    if [k for item in kinds for k in str(item).split(",") if k.strip()] != ["python"] or with_preprocess:
        raise ServeError(f"platform(s) {', '.join(map(str, kinds))}{' with --with-preprocess' * with_preprocess} "
                         "for an nnU-Net export", "the python platform (the pipeline model takes a raw volume)",
                         "drop --platform/--with-preprocess (unetrt serve: pass --no-preprocess)")
    if device not in ("cpu", "gpu") or instances < 1 or batch_size < 1:
        raise ServeError(f"device={device!r}, instances={instances}, batch_size={batch_size}",
                         "device cpu or gpu, instances >= 1, batch size >= 1", "fix the options")
    configs.check_name(name)
    source = Path(export_dir).expanduser().resolve()
    dirs, section = export_sections(source)
    target = check_target(Path(repo), force)
    if target == source or source in target.parents or target in source.parents:
        raise OutputError(f"repository {target} overlaps the export directory {source}",
                          "a repository outside the export", "choose another -o")
    params = {"unetrt.nnunet.batch_size": str(int(batch_size)),
              "unetrt.nnunet.mirroring": "true" if use_mirroring else "false",
              "unetrt.nnunet.configuration": section.configuration}
    if threads is not None:
        params["unetrt.threads"] = str(int(threads))
    channels = len(section.channel_names)
    config = configs.model_config(
        name, inputs=[configs.TensorSpec(IMAGE, "float32", (channels, -1, -1, -1)),
                      configs.TensorSpec(SPACING, "float32", (3,))],
        outputs=[configs.TensorSpec(SEGMENTATION, "uint8", (-1, -1, -1))], max_batch_size=0, backend="python",
        kind="KIND_GPU" if device == "gpu" else "KIND_CPU", instances=instances, dynamic_batching=False,
        parameters=params)
    plan = RepositoryPlan(target, models={"nnunet": name})
    plan.notes.append(f"{name}: the nnU-Net pipeline of {len(dirs)} fold(s) ({section.configuration}); send "
                      f"{IMAGE} float32 [{channels}, Z, Y, X] and {SPACING} float32 [3] (z, y, x), "
                      f"receive {SEGMENTATION} uint8 [Z, Y, X]")
    with staged_repository(plan) as stage:
        version = write_config(stage, config, plan) / "1"
        (version / "model.py").write_text(_SHIM)
        for d in dirs:  # each fold's listed artifacts, checked against its manifest's sha256
            fold = read_contract(d)
            (version / d.name).mkdir()
            for path in fold.files():
                fold.copy(path, version / d.name / path.name)
        for extra in ("plans.json", "dataset.json", "dataset_fingerprint.json"):
            if (source / extra).is_file():
                shutil.copy2(source / extra, version / extra)
    return plan
