"""The nnU-Net parts of ``unet-export --nnunet`` and ``unet-predict --nnunet-export`` (kept apart from the
generic commands, which only hand over to these functions)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import click

from ..errors import InputError, OutputError, UnetrtError
from .options import option_group

__all__ = ["export_options", "predict_options", "run_export", "run_predict", "parse_folds", "read_case", "write_seg"]


def parse_folds(text: str | None) -> list[int | str] | None:
    """``"0,1"`` -> ``[0, 1]`` (``all`` kept as a string); ``None`` -> ``None``."""
    if text is None:
        return None
    folds: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            folds.append(part)
        elif part.isdigit():
            folds.append(int(part))
        else:
            raise UnetrtError(f"--folds {text!r}", "comma-separated fold numbers (0,1,2) or all", "fix --folds")
    return folds


@dataclass(frozen=True)
class NnunetExport:
    """``unet-export``'s nnU-Net source: the results folder (``None``: not an nnU-Net export), configuration, folds."""

    results_dir: str | None = None
    configuration: str | None = None
    folds: str | None = None


def export_options(fn):
    """``--nnunet``, ``--configuration``, ``--folds`` for ``unet-export``, passed as ``nnunet`` (:class:`NnunetExport`)."""
    options = [
        click.option("--nnunet", "nnunet_dir", type=click.Path(file_okay=False), default=None,
                     help="Export every fold of a trained nnU-Net v2 results folder (plans.json, dataset.json, "
                          "fold_<k>/); --checkpoint then names the file in each fold (default checkpoint_final.pth)."),
        click.option("--configuration", default=None, help="nnU-Net configuration (default: the checkpoints' own)."),
        click.option("--folds", default=None, help="nnU-Net folds, e.g. 0,1 (default: every fold_<k>)."),
    ]

    def build(nnunet_dir, configuration, folds):
        return NnunetExport(nnunet_dir, configuration, folds)
    return option_group(options, build, "nnunet")(fn)


def run_export(source: NnunetExport, output: str | None, checkpoint: str | None, base: Any, console: Any,
               report: Any) -> dict[str, Any]:
    """Export the folds; returns a JSON summary."""
    from ..nnunet.export import export_nnunet

    nnunet_dir, configuration, folds = source.results_dir, source.configuration, source.folds

    name = Path(checkpoint).name if checkpoint else "checkpoint_final.pth"
    target = output or f"export/{Path(nnunet_dir).resolve().name}"
    results = export_nnunet(nnunet_dir, target, configuration=configuration, folds=parse_folds(folds),
                            checkpoint=name, base=base, progress=report)
    rows = []
    for r in results:
        nn = r.manifest.nnunet
        rows.append({"fold": nn.fold, "output_dir": str(r.output_dir), "files": [p.name for p in r.files]})
        console.print(f"fold {nn.fold} → {r.output_dir}  ({', '.join(p.name for p in r.files)})",
                      markup=False, highlight=False)
    return {"nnunet": str(nnunet_dir), "configuration": results[0].manifest.nnunet.configuration, "folds": rows}


def predict_options(fn):
    """``--nnunet-export`` and its options for ``unet-predict``."""
    for opt in reversed([
        click.option("--nnunet-export", "nnunet_export", type=click.Path(file_okay=False), default=None,
                     help="Predict like nnUNetPredictor with an `unet-export --nnunet` directory: -i takes the case's "
                          "channel files (_0000, _0001...), -o a folder."),
        click.option("--folds", "nnunet_folds", default=None, help="nnU-Net folds to ensemble (default: all exported)."),
        click.option("--disable-tta", is_flag=True, help="nnU-Net: no mirroring test-time augmentation."),
    ]):
        fn = opt(fn)
    return fn


def read_case(files: Sequence[str]) -> tuple[Any, list[float], Any]:
    """Channel files -> ``(C, Z, Y, X)`` array, spacing (z, y, x) and the first file's SimpleITK image.

    Raises:
        InputError: A missing or unreadable file, files of different geometry, or no spacing.
    """
    import numpy as np

    try:
        import SimpleITK as sitk
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("SimpleITK is not installed", "SimpleITK to read NIfTI/NRRD/MHA cases",
                                     "pip install 'unetrt[nnunet]'") from None
    arrays, spacing, first = [], None, None
    for f in files:
        if not Path(f).is_file():
            raise InputError(f"case file {f} does not exist", "an image file per channel", "check -i")
        try:
            img = sitk.ReadImage(str(f))
        except RuntimeError as exc:
            raise InputError(f"cannot read {f} ({' '.join(str(exc).split())[:120]})",
                             "a NIfTI/NRRD/MHA image", "check the file") from None
        arr = sitk.GetArrayFromImage(img)
        if arr.ndim != 3:
            raise InputError(f"{f} has {arr.ndim} dimensions", "a 3-D image (2-D configurations take 3-D stacks)",
                             "pass a 3-D volume per channel")
        sp = list(img.GetSpacing())[::-1]
        if spacing is not None and (arr.shape != arrays[0].shape or not np.allclose(sp, spacing)):
            raise InputError(f"{f} differs in shape or spacing from {files[0]}", "channels of one geometry",
                             "resample the channels onto one grid")
        arrays.append(arr)
        spacing, first = sp, first or img
    return np.stack(arrays).astype(np.float32), [abs(float(s)) for s in spacing], first


def write_seg(seg: Any, reference: Any, path: Path) -> None:
    """Write a label map with the reference image's geometry, atomically."""
    import SimpleITK as sitk

    from ..fileio import atomic_path

    out = sitk.GetImageFromArray(seg)
    out.CopyInformation(reference)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    with atomic_path(path) as tmp:
        staged = Path(str(tmp) + suffix)
        try:
            sitk.WriteImage(out, str(staged), True)
            staged.replace(tmp)
        finally:
            staged.unlink(missing_ok=True)


def _case_name(first: str, ending: str) -> str:
    name = Path(first).name
    base = name[:-len(ending)] if name.endswith(ending) else name.split(".")[0]
    return base[:-5] if len(base) > 5 and base[-5] == "_" and base[-4:].isdigit() else base


def run_predict(export_dir: str, inputs: Sequence[str], outputs: Sequence[str] | None, backend: str, device: str,
                precision: str | None, folds: str | None, disable_tta: bool, batch: int, force: bool,
                console: Any) -> dict[str, Any]:
    """Predict one case (its channel files) into the output folder."""
    import time

    from ..nnunet.predict import NnunetPredictor

    if not outputs or len(outputs) != 1:
        raise UnetrtError("--nnunet-export needs one output folder", "-o OUT_DIR/", "pass -o out/")
    out_dir = Path(outputs[0])
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"output {out_dir} is a file", "a folder", "pass -o out/")
    predictor = NnunetPredictor.from_export(export_dir, backend, device, precision=precision,
                                            folds=parse_folds(folds), use_mirroring=not disable_tta,
                                            batch_size=max(batch, 8))
    nn = predictor.section
    image, spacing, reference = read_case(inputs)
    target = out_dir / (_case_name(inputs[0], nn.file_ending) + nn.file_ending)
    if target.exists() and not force:
        raise OutputError(f"{target} exists", "a new output file", "pass --force to overwrite it")
    start = time.perf_counter()
    with predictor:
        seg, _ = predictor.predict(image, spacing)
    seconds = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    write_seg(seg, reference, target)
    console.print(f"{', '.join(inputs)} → {target}  [{len(predictor.runners)} fold(s), {seconds:.2f} s]",
                  markup=False, highlight=False)
    import numpy as np

    return {"output": str(target), "seconds": round(seconds, 3), "folds": len(predictor.runners),
            "label_voxels": np.bincount(seg.ravel()).tolist(), "notes": [n for r in predictor.runners for n in r.notes]}


def echo_json(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, indent=2))
