"""``unet-predict`` / ``unetrt predict``: milesial's predict.py command line on any unetrt runner.

milesial's own form works unchanged: ``-m MODEL.pth -i a.png b.png -o a_out.png b_out.png`` (argparse
``nargs='+'``), with ``--classes``, ``--bilinear``, ``--viz``, ``--no-save``, ``--mask-threshold`` and
``--scale``; so does repeating the option (``-i a.png -i b.png``) and passing an export directory,
``.onnx`` or engine as ``-m``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import numpy as np

from .options import (BackendName, GreedyCommand, GreedyOption, LiveHelpOption, backends_help, device_option,
                      handle_errors, make_console)
from ..errors import OutputError, UnetrtError
from . import nnunet_cmds
from ..fileio import IMAGE_SUFFIXES as FILE_IMAGE_SUFFIXES

IMAGE_SUFFIXES = (*FILE_IMAGE_SUFFIXES, ".gif")
CHECKPOINT_SUFFIXES = (".pth", ".pt")


def _expand_inputs(inputs: tuple[str, ...], warn) -> list[tuple[Path, bool]]:
    """Files as given; folders expanded to their images. Returns (path, from_folder)."""
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not f.stem.endswith(("_OUT", "_OVERLAY", "_VIZ")))
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


def _is_folder(output: str) -> bool:
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def _output_paths(files: list[tuple[Path, bool]], outputs: tuple[str, ...]) -> list[Path]:
    """milesial's naming (``<name>_OUT.png`` beside the input) unless -o says otherwise.

    One -o that ends with ``/`` or is an existing folder holds every ``<name>_OUT.png``; otherwise
    one -o per input (each may itself be a folder).
    """
    if not outputs:
        targets = [f.with_name(f.stem + "_OUT.png") for f, _ in files]
    elif len(outputs) == 1 and _is_folder(outputs[0]):
        targets = [Path(outputs[0]) / (f.stem + "_OUT.png") for f, _ in files]
    elif len(outputs) == len(files):
        targets = [Path(o) / (f.stem + "_OUT.png") if _is_folder(o) else Path(o) for o, (f, _) in zip(outputs, files)]
    else:
        raise UnetrtError(f"{len(outputs)} output path(s) for {len(files)} input image(s)",
                          "one -o per input image, or one folder (ending in /)", "fix -o")
    seen: dict[Path, Path] = {}
    for target, (src, _) in zip(targets, files):
        if target.resolve() in seen:
            raise UnetrtError(f"{seen[target.resolve()]} and {src} would both be written to {target}",
                              "one output file per input", "pass one -o per input")
        seen[target.resolve()] = src
    return targets


def _check_writable(targets: list[Path], force: bool) -> None:
    """Refuse existing outputs (without --force), folders in the way and unwritable locations up front."""
    existing = [str(t) for t in targets if t.exists()]
    dirs = [t for t in targets if t.is_dir()]
    if dirs:
        raise OutputError(f"output {dirs[0]} is a directory", "an image file path, or a folder ending in /",
                          f"write -o {dirs[0]}/ to put the masks inside it")
    if existing and not force:
        raise OutputError(f"output {existing[0]} exists" + (f" (+{len(existing) - 1} more)" if len(existing) > 1
                          else ""), "new output paths", "pass --force to overwrite, or choose -o")
    for parent in sorted({t.parent for t in targets}):
        probe = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise OutputError(f"output directory {parent} is not writable", "a folder you can write to",
                              "check its permissions or choose another -o")


def _save(array: np.ndarray, path: Path) -> None:
    """Write a PNG atomically (temp file + rename); OS errors become one line."""
    from ..fileio import atomic_path
    from ..runtime.transforms import to_pil_image

    try:
        with atomic_path(path) as tmp:
            to_pil_image(array).save(tmp, format="PNG")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "a writable output location",
                          "check permissions and free space, or choose another -o") from exc


def _viz(image: np.ndarray, mask: np.ndarray, path: Path | None) -> None:
    """milesial's ``--viz``: the image and one panel per class present (``mask == i``); saved to ``path``
    and, where a display is available, shown (blocking, as milesial's ``plt.show()``)."""
    from ..bench.report import require_matplotlib

    require_matplotlib()
    import matplotlib

    headless = matplotlib.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template") or \
        not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt")
    if headless:
        from matplotlib.figure import Figure
        fig = Figure()
    else:
        import matplotlib.pyplot as plt
        fig = plt.figure()
    classes = int(mask.max()) + 1
    axes = fig.subplots(1, classes + 1)
    axes[0].set_title("Input image")
    axes[0].imshow(image, cmap="gray" if image.ndim == 2 else None)
    for i in range(classes):
        axes[i + 1].set_title(f"Mask (class {i + 1})")
        axes[i + 1].imshow(mask == i)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if path is not None:
        from ..fileio import atomic_path

        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    if not headless:
        plt.show()


def _mask_values(runner, model_path: str):
    """``mask_values`` from the manifest, or from a milesial checkpoint itself (as its predict.py reads them)."""
    values = runner.manifest.mask_values if runner.manifest is not None else None
    if values is None and Path(model_path).suffix.lower() in CHECKPOINT_SUFFIXES:
        from ..models import load_checkpoint

        values = load_checkpoint(model_path)[1].get("mask_values")
    return values


def _predict_all(runner, files, targets, opts, con, report) -> list[dict]:
    """Read, segment and save every image; returns the --json rows."""
    from ..runtime.predict import overlay as blend
    from ..runtime.predict import predict, predict_batch
    from ..runtime.transforms import load_image, mask_to_image

    name, constraint = next(iter(runner.input_constraints.items()))
    channels = constraint.shape[1] if len(constraint.shape) == 4 else None
    mask_values, rows, total, done = opts["mask_values"], [], len(files), 0
    pending = []
    for (path, in_folder), target in zip(files, targets):
        try:
            pending.append((path, target, load_image(path, channels)))
        except UnetrtError as exc:
            if not in_folder:
                raise
            con.print(f"[yellow]warning: skipped {path}: {exc.what}[/]")
            total -= 1
    while pending:
        shape = pending[0][2].shape
        group = [p for p in pending if p[2].shape == shape][:opts["batch"]]
        pending = [p for p in pending if not any(p is g for g in group)]
        kw = {"scale": opts["scale"], "mask_threshold": opts["mask_threshold"]}
        if len(group) > 1:
            preds = predict_batch(runner, [g[2] for g in group], **kw)
        else:
            preds = [predict(runner, group[0][2], tile=opts["tile"], progress=report.counter(f"{group[0][0].name} tiles"),
                             **kw)]
        for (path, target, img), pred in zip(group, preds):
            if not opts["no_save"]:
                _save(mask_to_image(pred.mask, mask_values), target)
                if opts["overlay"]:
                    _save(blend(img, pred.mask), target.with_name(target.stem.removesuffix("_OUT") + "_OVERLAY.png"))
            if opts["viz"]:
                viz_path = None if opts["no_save"] else target.with_name(target.stem.removesuffix("_OUT") + "_VIZ.png")
                _viz(img, pred.mask, viz_path)
            counts = np.bincount(pred.mask.ravel(), minlength=2).tolist()
            rows.append({"input": str(path), "output": None if opts["no_save"] else str(target),
                         "size": list(img.shape[:2]), "mode": pred.mode, "class_pixels": counts,
                         "timings_ms": {k: round(v, 3) for k, v in pred.timings_ms.items()}})
            done += 1
            con.print(f"{path} → {'(not saved)' if opts['no_save'] else target}  [{pred.mode}, "
                      f"{pred.timings_ms['infer']:.1f} ms]", markup=False, highlight=False)
            if report.live:
                report("predicting", done, total)
    return rows


@click.command("predict", cls=GreedyCommand)
@handle_errors
@click.option("-m", "--model", "model_path", default=None, type=click.Path(),
              help="Export directory, .onnx, .engine/.plan, or a milesial/state-dict .pth checkpoint (MODEL.pth, "
                   "run eagerly; --arch/--classes/--width/--bilinear describe it).")
@click.option("--triton", "triton_url", default=None, metavar="URL",
              help="Run on a Triton server instead (http://HOST:PORT or grpc://HOST:PORT); needs unetrt[serve].")
@click.option("--triton-model", default="unet", show_default=True, help="Model name on the Triton server.")
@click.option("-i", "--input", "inputs", cls=GreedyOption, required=True, metavar="IMAGE...",
              help="Image file(s) or folder(s): -i a.png b.png (milesial) or -i a.png -i b.png.")
@click.option("-o", "--output", "outputs", cls=GreedyOption, metavar="OUT...",
              help="Mask path per input (-o a_out.png b_out.png), or one folder ending in / (or existing) for "
                   "<name>_OUT.png inside. Default: <name>_OUT.png beside each input.")
@click.option("-s", "--scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Downscaling factor of the images (milesial's predict.py defaults to 0.5).")
@click.option("-t", "--mask-threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Sigmoid threshold for one-class models.")
@click.option("--backend", type=BackendName(), default="auto", show_default=True, cls=LiveHelpOption,
              help_fn=lambda: backends_help("auto (an engine on a GPU, else ONNX Runtime), a family (torch, ort, "
                                            "trt) or a backend name."))
@device_option()
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Artifact precision (default: FP16 on a GPU, FP32 on a CPU, whichever the export has).")
@click.option("--arch", default=None, help="Zoo variant of a bare .pth checkpoint (default milesial).")
@click.option("-c", "--classes", type=click.IntRange(min=1), default=None,
              help="Classes of a bare .pth (milesial's --classes; default 2).")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Base width of a bare .pth (default 64).")
@click.option("--bilinear", is_flag=True, default=None, help="Bilinear-upsampling milesial (bare .pth).")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images of equal size per inference call.")
@click.option("--tile", type=click.IntRange(min=1), default=None,
              help="Tile size for sliding-window inference of images larger than it.")
@click.option("--overlay", is_flag=True, help="Also write <name>_OVERLAY.png (mask blended over the image).")
@click.option("-v", "--viz", is_flag=True,
              help="milesial's --viz: plot image and masks; shown on a display, saved as <name>_VIZ.png unless "
                   "--no-save (needs matplotlib).")
@click.option("-n", "--no-save", is_flag=True, help="Do not write masks.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("--json", "as_json", is_flag=True, help="Per-image timings and mask statistics as JSON on stdout.")
@nnunet_cmds.predict_options
def predict_cmd(model_path, triton_url, triton_model, inputs, outputs, scale, mask_threshold, backend, device,
                precision, arch, classes, width, bilinear, batch, tile, overlay, viz, no_save, force, as_json,
                nnunet_export, nnunet_folds, disable_tta):
    """Predict masks for images (milesial predict.py compatible command line and output)."""
    from ..runtime import load
    from .progress import Reporter

    con = make_console()
    if nnunet_export is not None:
        if model_path or triton_url:
            raise UnetrtError("--nnunet-export with -m/--triton", "one model source", "drop -m/--triton")
        data = nnunet_cmds.run_predict(nnunet_export, inputs, outputs, backend, device, precision, nnunet_folds,
                                       disable_tta, batch, force, con)
        if as_json:
            click.echo(json.dumps(data, indent=2))
        return
    if (model_path is None) == (triton_url is None):
        raise UnetrtError("give exactly one of -m/--model and --triton", "a local model or a Triton server URL",
                          "pass -m EXPORT_DIR, or --triton http://HOST:PORT")
    if any(_is_volume(i) for i in inputs):
        if triton_url is not None:
            raise UnetrtError("--triton with volumes", "a local volumetric export (-m EXPORT_DIR)",
                              "segment volumes with -m")
        _predict_volumes(inputs, outputs, model_path, backend, device, precision, mask_threshold, tile, no_save,
                         force, as_json, con)
        return
    files = _expand_inputs(inputs, lambda msg: con.print(f"[yellow]{msg}[/]"))
    targets = _output_paths(files, outputs)
    if not no_save:
        _check_writable(targets, force)
    kw = {}
    if triton_url is None and Path(model_path).suffix.lower() in CHECKPOINT_SUFFIXES:
        kw = {"arch": arch or "milesial",
              "model_kwargs": {k: v for k, v in {"num_classes": classes, "width": width, "bilinear": bilinear}.items()
                               if v is not None}}
    if triton_url is not None:
        from ..serve.client import TritonRunner

        runner = TritonRunner(triton_url, triton_model)
    else:
        runner = load(model_path, backend=backend, device=device, precision=precision, **kw)
    with runner, Reporter(con, steps=False) as report:
        opts = {"scale": scale, "mask_threshold": mask_threshold, "batch": batch, "tile": tile, "overlay": overlay,
                "viz": viz, "no_save": no_save, "mask_values": _mask_values(runner, model_path or "")}
        rows = _predict_all(runner, files, targets, opts, con, report)
    if as_json:
        click.echo(json.dumps({"model": str(model_path or f"{triton_url}/{triton_model}"), "runner": type(runner).__name__, "notes": runner.notes,
                               "images": rows}, indent=2))


def _is_volume(path: str) -> bool:
    from ..runtime.volume import VOLUME_SUFFIXES

    return str(path).lower().endswith(VOLUME_SUFFIXES)


def _volume_target(path: Path, outputs: tuple[str, ...], i: int, n: int) -> Path:
    name = path.name[:-len(".nii.gz")] if path.name.lower().endswith(".nii.gz") else path.stem
    suffix = path.name[len(name):]
    if not outputs:
        return path.with_name(name + "_OUT" + suffix)
    if len(outputs) == n:
        return Path(outputs[i])
    if len(outputs) == 1 and (Path(outputs[0]).is_dir() or outputs[0].endswith("/")):
        return Path(outputs[0]) / (name + "_OUT" + suffix)
    raise UnetrtError(f"{len(outputs)} output path(s) for {n} input volume(s)",
                      "one -o per input volume, or one existing folder", "fix -o")


def _predict_volumes(inputs, outputs, model_path, backend, device, precision, mask_threshold, tile, no_save, force,
                     as_json, con) -> None:
    """Volumes (.npy, NIfTI with nibabel): one label volume each, sliding windows when larger than the engine."""
    from ..runtime import load
    from ..runtime.volume import predict_volume, read_volume, write_volume

    if not all(_is_volume(i) for i in inputs):
        raise UnetrtError("images and volumes mixed in -i", "only image files or only volumes (.npy, .nii, .nii.gz)",
                          "run unet-predict once per kind")
    paths = [Path(i) for i in inputs]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UnetrtError(f"input {missing[0]} does not exist", "volume files", "check the path")
    targets = [_volume_target(p, outputs, i, len(paths)) for i, p in enumerate(paths)]
    if not no_save and not force and any(t.exists() for t in targets):
        raise UnetrtError(f"output {next(t for t in targets if t.exists())} exists", "new output paths",
                          "pass --force to overwrite, or choose -o")
    rows = []
    with load(model_path, backend=backend, device=device, precision=precision) as runner:
        for path, target in zip(paths, targets):
            volume, affine = read_volume(path)
            pred = predict_volume(runner, volume, tile=tile, mask_threshold=mask_threshold)
            if not no_save:
                write_volume(pred.mask, target, affine)
            rows.append({"input": str(path), "output": None if no_save else str(target), "size": list(pred.mask.shape),
                         "mode": pred.mode, "class_voxels": np.bincount(pred.mask.ravel(), minlength=2).tolist(),
                         "timings_ms": {k: round(v, 3) for k, v in pred.timings_ms.items()}})
            con.print(f"{path} → {'(not saved)' if no_save else target}  [{pred.mode}, {pred.timings_ms['infer']:.1f} ms]")
    if as_json:
        click.echo(json.dumps({"model": str(model_path), "runner": type(runner).__name__, "notes": runner.notes,
                               "volumes": rows}, indent=2))


def main() -> None:  # console script `unet-predict`
    predict_cmd(prog_name="unet-predict")
