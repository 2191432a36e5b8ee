"""``unet-predict`` / ``unetrt predict``: milesial's predict.py flags on any unetrt runner."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np

from .options import BackendName, LiveHelpOption, backends_help, handle_errors
from ..errors import UnetrtError
from ..fileio import IMAGE_SUFFIXES as FILE_IMAGE_SUFFIXES

IMAGE_SUFFIXES = (*FILE_IMAGE_SUFFIXES, ".gif")


def _expand_inputs(inputs: tuple[str, ...], warn) -> list[tuple[Path, bool]]:
    """Files as given; folders expanded to their images. Returns (path, from_folder)."""
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not f.stem.endswith(("_OUT", "_OVERLAY")))
            if not files:
                warn(f"warning: no images in folder {p}")
            out.extend((f, True) for f in files)
        elif p.is_file():
            out.append((p, False))
        else:
            raise UnetrtError(f"input {item} does not exist", "image files or folders", "check the path")
    if not out:
        raise UnetrtError("no input images", "at least one image file or a folder with images", "pass -i PATH")
    return out


def _output_paths(files: list[tuple[Path, bool]], outputs: tuple[str, ...]) -> list[Path]:
    """milesial's naming (``<name>_OUT.png`` beside the input) unless -o says otherwise."""
    if not outputs:
        return [f.with_name(f.stem + "_OUT.png") for f, _ in files]
    if len(outputs) == len(files):
        return [Path(o) for o in outputs]
    if len(outputs) == 1 and (Path(outputs[0]).is_dir() or outputs[0].endswith("/")):
        return [Path(outputs[0]) / (f.stem + "_OUT.png") for f, _ in files]
    raise UnetrtError(f"{len(outputs)} output path(s) for {len(files)} input image(s)",
                      "one -o per input image, or one existing folder", "fix -o")


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UnetrtError(f"cannot read image {path}: {exc}", "a readable image file (png, jpg, ...)",
                          "check the file") from exc


def _save(array: np.ndarray, path: Path) -> None:
    """Write a PNG atomically (temp file + rename)."""
    from ..fileio import atomic_path
    from ..runtime.transforms import to_pil_image

    with atomic_path(path) as tmp:
        to_pil_image(array).save(tmp, format="PNG")


@click.command("predict")
@handle_errors
@click.option("-m", "--model", "model_path", required=True, type=click.Path(),
              help="Export directory, .onnx, .engine/.plan, or a .pth checkpoint (with --arch).")
@click.option("-i", "--input", "inputs", required=True, multiple=True, help="Image file(s) or folder(s).")
@click.option("-o", "--output", "outputs", multiple=True, help="Output mask path(s), or one folder.")
@click.option("-s", "--scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Downscaling factor of the images (milesial's predict.py defaults to 0.5).")
@click.option("-t", "--mask-threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Sigmoid threshold for one-class models.")
@click.option("--backend", type=BackendName(), default="auto", show_default=True, cls=LiveHelpOption,
              help_fn=lambda: backends_help("auto (an engine on a GPU, else ONNX Runtime), a family (torch, ort, "
                                            "trt) or a backend name."))
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Artifact precision (default: FP16 on a GPU, FP32 on a CPU, whichever the export has).")
@click.option("--arch", default=None, help="Zoo variant of a bare .pth checkpoint (default milesial).")
@click.option("-c", "--classes", type=click.IntRange(min=1), default=None, help="Classes of a bare .pth.")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Base width of a bare .pth.")
@click.option("--bilinear", is_flag=True, default=None, help="Bilinear milesial (bare .pth).")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images of equal size per inference call.")
@click.option("--tile", type=click.IntRange(min=1), default=None, help="Tile size for tiled inference.")
@click.option("--overlay", is_flag=True, help="Also write <name>_OVERLAY.png (mask blended over the image).")
@click.option("-n", "--no-save", is_flag=True, help="Do not write masks.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("--json", "as_json", is_flag=True, help="Per-image timings and mask statistics as JSON on stdout.")
def predict_cmd(model_path, inputs, outputs, scale, mask_threshold, backend, device, precision, arch, classes, width,
                bilinear, batch, tile, overlay, no_save, force, as_json):
    """Predict masks for images (milesial predict.py compatible output)."""
    from rich.console import Console
    from rich.progress import Progress

    from ..runtime import load
    from ..runtime.predict import overlay as blend
    from ..runtime.predict import predict, predict_batch
    from ..runtime.transforms import mask_to_image

    con = Console(stderr=True)
    files = _expand_inputs(inputs, lambda msg: con.print(f"[yellow]{msg}[/]"))
    targets = _output_paths(files, outputs)
    if not no_save and not force:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise UnetrtError(f"output {existing[0]} exists" + (f" (+{len(existing) - 1} more)" if len(existing) > 1
                              else ""), "new output paths", "pass --force to overwrite, or choose -o")
    kw = {}
    if Path(model_path).suffix.lower() in (".pth", ".pt"):
        kw = {"arch": arch or "milesial",
              "model_kwargs": {k: v for k, v in {"num_classes": classes, "width": width, "bilinear": bilinear}.items()
                               if v is not None}}
    runner = load(model_path, backend=backend, device=device, precision=precision, **kw)
    rows = []
    with runner, Progress(console=con, transient=True, disable=len(files) < 2) as bar:
        task = bar.add_task("predicting", total=len(files))
        mask_values = runner.manifest.mask_values if runner.manifest is not None else None
        pending = []
        for (path, in_folder), target in zip(files, targets):
            try:
                pending.append((path, target, _read_image(path)))
            except UnetrtError as exc:
                if not in_folder:
                    raise
                con.print(f"[yellow]warning: skipped {path}: {exc.what}[/]")
                bar.advance(task)
        while pending:
            shape = pending[0][2].shape
            group = [p for p in pending if p[2].shape == shape][:batch]
            pending = [p for p in pending if not any(p is g for g in group)]
            t = time.perf_counter()
            if len(group) > 1:
                preds = predict_batch(runner, [g[2] for g in group], scale=scale, mask_threshold=mask_threshold)
            else:
                preds = [predict(runner, group[0][2], scale=scale, mask_threshold=mask_threshold, tile=tile)]
            for (path, target, img), pred in zip(group, preds):
                if not no_save:
                    _save(mask_to_image(pred.mask, mask_values), target)
                    if overlay:
                        _save(blend(img, pred.mask), target.with_name(target.stem.removesuffix("_OUT")
                                                                      + "_OVERLAY.png"))
                counts = np.bincount(pred.mask.ravel(), minlength=2).tolist()
                rows.append({"input": str(path), "output": None if no_save else str(target),
                             "size": list(img.shape[:2]), "mode": pred.mode, "class_pixels": counts,
                             "timings_ms": {k: round(v, 3) for k, v in pred.timings_ms.items()}})
                con.print(f"{path} → {'(not saved)' if no_save else target}  [{pred.mode}, "
                          f"{pred.timings_ms['infer']:.1f} ms]")
                bar.advance(task)
            _ = time.perf_counter() - t
    if as_json:
        click.echo(json.dumps({"model": str(model_path), "runner": type(runner).__name__, "notes": runner.notes,
                               "images": rows}, indent=2))


def main() -> None:  # console script `unet-predict`
    predict_cmd(prog_name="unet-predict")
