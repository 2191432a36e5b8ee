"""``unet-predict`` / ``unetrt predict``: milesial's predict.py command line on any unetrt runner.

milesial's own form works unchanged: ``-m MODEL.pth -i a.png b.png -o a_out.png b_out.png`` (argparse
``nargs='+'``), with ``--classes``, ``--bilinear``, ``--viz``, ``--no-save``, ``--mask-threshold`` and
``--scale``; so does repeating the option (``-i a.png -i b.png``) and passing an export directory,
``.onnx`` or engine as ``-m``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import click
import numpy as np

from . import nnunet_cmds
from .options import (SIGINT_EXIT, SIGTERM_EXIT, BackendName, GreedyCommand, GreedyOption, LiveHelpOption,
                      backends_help, device_option, handle_errors, make_console)
from ..errors import OutputError, Terminated, UnetrtError, terminate_as_interrupt
from ..runtime.dataset import check_outputs, expand_inputs, is_folder_target, output_paths

CHECKPOINT_SUFFIXES = (".pth", ".pt")


def _warn_fallback(runner, con) -> None:
    """Say on stderr when a listed artifact is missing and another one runs instead (e.g. FP16 for a deleted
    model.onnx): the masks then come from a different precision than the user may expect."""
    missing = dict.fromkeys(n.split(": ", 1)[-1] for n in runner.notes if n.startswith("skipped ") and "missing" in n)
    chosen = next((n[len("chose "):] for n in runner.notes if n.startswith("chose ")), None)
    for note in missing:
        con.print(f"warning: {note}; running {chosen or runner.name} instead", markup=False, highlight=False)


def _model_files(model_path: str | None) -> list[Path]:
    """The model file, or every file of an export directory (never overwritten by a mask)."""
    if not model_path:
        return []
    p = Path(model_path)
    return sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]


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


def _predict_all(runner, sources, targets, opts, con, report) -> tuple[list[dict], list[str]]:
    """Stream every image through the pipeline (runtime/stream.py); returns the --json rows and the errors of
    images named explicitly (fatal after the run; unreadable images found in folders are only skipped)."""
    from ..runtime.stream import iter_predictions

    rows, fatal, total, done, t0 = [], [], len(sources), 0, time.perf_counter()
    index = _open_index(opts["index"])
    try:
        for res in iter_predictions(runner, [s.path for s in sources], None if opts["no_save"] else targets,
                                    batch=opts["batch"], scale=opts["scale"], mask_threshold=opts["mask_threshold"],
                                    tile=opts["tile"], mask_values=opts["mask_values"], overlay=opts["overlay"],
                                    skip_existing=opts["skip_existing"], keep_arrays=opts["viz"],
                                    readers=opts["readers"], writers=opts["writers"], labels=opts.get("labels")):
            done += 1
            if index is not None:
                index.write(json.dumps(res.row()) + "\n")
                index.flush()
            if res.status == "error":
                if sources[res.index].listed:
                    con.print(f"warning: skipped {res.input}: {res.error}", markup=False, highlight=False, style="yellow")
                else:
                    fatal.append(res.error)
                continue
            if res.status == "skipped":
                con.print(f"{res.input} → {res.output}  [exists, skipped]", markup=False, highlight=False)
                continue
            if opts["viz"]:
                target = targets[res.index]
                _viz(res.image, res.mask, None if opts["no_save"] else
                     target.with_name(target.stem.removesuffix("_OUT") + "_VIZ.png"))
            rows.append({k: v for k, v in res.row().items() if k not in ("status", "error")})
            con.print(f"{res.input} → {res.output or '(not saved)'}  [{res.mode}, {res.timings_ms['infer']:.1f} ms]",
                      markup=False, highlight=False)
            if report.live:
                rate = done / max(time.perf_counter() - t0, 1e-9)
                report(f"predicting, {rate:.1f} images/s", done, total)
    except KeyboardInterrupt as exc:
        written = sum(1 for r in rows if r["output"])
        con.print(f"Error: {'terminated' if isinstance(exc, Terminated) else 'interrupted (Ctrl-C)'} after {done} of "
                  f"{total} images | {written} mask(s) written completely, none half-written | run the same command "
                  f"with --skip-existing to finish", markup=False, highlight=False)
        raise SystemExit(SIGTERM_EXIT if isinstance(exc, Terminated) else SIGINT_EXIT) from None
    finally:
        if index is not None:
            index.close()
    elapsed = time.perf_counter() - t0
    if total > 1:
        con.print(f"{len(rows)} image(s) in {elapsed:.2f} s ({len(rows) / max(elapsed, 1e-9):.1f} images/s)",
                  markup=False, highlight=False)
    return rows, fatal


def _predict_on_ray(sources, targets, job, ray_opts, skip_existing, index_path, con) -> tuple[list[dict], list[str]]:
    """``--ray``: the images as one Ray Data job (runtime/ray_predict.py); rows and fatal errors as locally."""
    from ..runtime.ray_predict import predict_with_ray, require_ray

    require_ray()
    todo = [(s, t) for s, t in zip(sources, targets) if not (skip_existing and t.is_file())]
    for s, t in zip(sources, targets):
        if skip_existing and t.is_file():
            con.print(f"{s.path} → {t}  [exists, skipped]", markup=False, highlight=False)
    if not todo:
        return [], []
    listed = {os.path.abspath(s.path): s.listed for s, _ in todo}
    rows, fatal, t0 = [], [], time.perf_counter()
    index = _open_index(index_path)

    def on_row(row: dict) -> None:
        if index is not None:
            index.write(json.dumps(row) + "\n")
            index.flush()
        if row["status"] == "error":
            if listed.get(os.path.abspath(row["input"])):
                con.print(f"warning: skipped {row['input']}: {row['error']}", markup=False, highlight=False,
                          style="yellow")
            else:
                fatal.append(row["error"])
            return
        rows.append({k: v for k, v in row.items() if k not in ("status", "error")})
        con.print(f"{row['input']} → {row['output'] or '(not saved)'}  [{row['mode']}, ray]", markup=False,
                  highlight=False)

    try:
        predict_with_ray([s.path for s, _ in todo], [t for _, t in todo], job, ray_opts, on_row=on_row)
    except KeyboardInterrupt as exc:
        con.print(f"Error: {'terminated' if isinstance(exc, Terminated) else 'interrupted (Ctrl-C)'} after "
                  f"{len(rows)} of {len(todo)} images | masks are written whole or not at all | run the same "
                  f"command with --skip-existing to finish", markup=False, highlight=False)
        raise SystemExit(SIGTERM_EXIT if isinstance(exc, Terminated) else SIGINT_EXIT) from None
    finally:
        if index is not None:
            index.close()
    elapsed = time.perf_counter() - t0
    con.print(f"{len(rows)} image(s) in {elapsed:.2f} s on Ray ({len(rows) / max(elapsed, 1e-9):.1f} images/s)",
              markup=False, highlight=False)
    return rows, fatal


def _open_index(path: str | None):
    """The results index (JSON Lines, one row per image), opened for appending so a resumed run adds to it."""
    if path is None:
        return None
    from ..fileio import require_regular_target

    require_regular_target(path)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the index {path}: {exc.strerror or exc}", "a writable file path",
                          "choose another --index") from None


@click.command("predict", cls=GreedyCommand)
@handle_errors
@click.option("-m", "--model", "model_path", default=None, type=click.Path(),
              help="Export directory, .onnx, .engine/.plan, or a milesial/state-dict .pth checkpoint (MODEL.pth, "
                   "run eagerly; --arch/--classes/--width/--bilinear describe it).")
@click.option("--triton", "triton_url", default=None, metavar="URL",
              help="Run on a Triton server instead (http://HOST:PORT or grpc://HOST:PORT); needs unetrt[serve].")
@click.option("--triton-model", default="unet", show_default=True, help="Model name on the Triton server.")
@click.option("-i", "--input", "inputs", cls=GreedyOption, required=True, metavar="IMAGE...",
              help="Image file(s), folder(s), glob patterns ('data/**/*.png', quoted) or @list.txt (one path a line): "
                   "-i a.png b.png (milesial) or -i a.png -i b.png.")
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
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images of equal size per inference call (capped by an engine's maximum batch); the masks are "
                   "the same as image by image.")
@click.option("--labels-graph", is_flag=True,
              help="Also run the export's model_labels.onnx (unet-export --labels-output) on ONNX Runtime: images "
                   "it takes whole at --scale 1 come out of the graph as uint8 labels (the same masks); the others "
                   "use the logits model.")
@click.option("-r", "--recursive", is_flag=True, help="Read the images of sub-folders too (mirrored under an -o folder).")
@click.option("--skip-existing", is_flag=True,
              help="Skip inputs whose mask exists (resume an interrupted run; masks are written atomically).")
@click.option("--index", "index_path", default=None, metavar="FILE.jsonl",
              help="Append one JSON line per image (input, output, status, size, class_pixels, ms, error).")
@click.option("--readers", type=click.IntRange(min=1), default=None, help="Image decoding threads (default 2).")
@click.option("--writers", type=click.IntRange(min=1), default=None,
              help="Post-processing and mask writing threads (default 2).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[auto|ADDRESS]",
              help="Run as a Ray Data job: alone, a local Ray on this machine; 'auto' the running cluster; or "
                   "ray://HOST:PORT. Workers read the images and write the masks (same bytes as a local run).")
@click.option("--ray-actors", type=click.IntRange(min=1), default=1, show_default=True,
              help="Ray actors, each holding one runner (--ray).")
@click.option("--ray-gpus", type=click.FloatRange(min=0), default=0, show_default=True,
              help="GPUs per Ray actor (1, or a fraction to share a GPU; --ray).")
@click.option("--ray-cpus", type=click.FloatRange(min=0, min_open=True), default=1, show_default=True,
              help="CPUs per Ray actor (its ONNX Runtime threads; --ray).")
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
                precision, arch, classes, width, bilinear, batch, labels_graph, recursive, skip_existing, index_path, readers, writers,
                ray_address, ray_actors, ray_gpus, ray_cpus, tile, overlay, viz, no_save, force, as_json, nnunet_export, nnunet_folds, disable_tta):
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
    sources = expand_inputs(inputs, recursive=recursive, warn=lambda msg: con.print(f"[yellow]{msg}[/]"))
    targets = output_paths(sources, outputs)
    protected = [s.path for s in sources] + _model_files(model_path)
    if not no_save:
        extra = [t.with_name(t.stem.removesuffix("_OUT") + "_OVERLAY.png") for t in targets] if overlay else []
        check_outputs(targets, protected, force=force, skip_existing=skip_existing, extra=extra)
    if index_path is not None:
        check_outputs([], protected, extra=[Path(index_path)], force=True)
    kw = {}
    if triton_url is None and Path(model_path).suffix.lower() in CHECKPOINT_SUFFIXES:
        kw = {"arch": arch or "milesial",
              "model_kwargs": {k: v for k, v in {"num_classes": classes, "width": width, "bilinear": bilinear}.items()
                               if v is not None}}
    if labels_graph and (triton_url is not None or ray_address is not None):
        raise UnetrtError(f"--labels-graph with {'--triton' if triton_url else '--ray'}", "a local export directory",
                          "drop --labels-graph")
    if ray_address is not None:
        if triton_url is not None or viz:
            raise UnetrtError(f"--ray with {'--triton' if triton_url else '--viz'}", "a local model, masks to files",
                              f"drop {'--triton' if triton_url else '--viz'} or --ray")
        from ..runtime.ray_predict import ImageJob, RayOptions

        job = ImageJob(model=str(model_path), load_kwargs={"backend": backend, "device": device, "precision": precision,
                                                             **kw},
                       scale=scale, mask_threshold=mask_threshold, tile=tile, overlay=overlay, save=not no_save)
        ray_opts = RayOptions(address=None if ray_address == "local" else ray_address, concurrency=ray_actors,
                              batch_size=batch, num_gpus=ray_gpus, num_cpus=ray_cpus)
        rows, fatal = _predict_on_ray(sources, targets, job, ray_opts, skip_existing, index_path, con)
        if fatal:
            raise UnetrtError(fatal[0] + (f" (+{len(fatal) - 1} more)" if len(fatal) > 1 else ""))
        if as_json:
            click.echo(json.dumps({"model": str(model_path), "runner": "ray", "images": rows}, indent=2))
        return
    if triton_url is not None:
        from ..serve.client import TritonRunner

        runner = TritonRunner(triton_url, triton_model)
    else:
        runner = load(model_path, backend=backend, device=device, precision=precision, **kw)
        _warn_fallback(runner, con)
    opts = {"scale": scale, "mask_threshold": mask_threshold, "batch": batch, "tile": tile, "overlay": overlay,
            "viz": viz, "no_save": no_save, "skip_existing": skip_existing, "index": index_path, "readers": readers,
            "writers": writers}
    labels = _labels_runner(runner, model_path, device) if labels_graph else None
    with terminate_as_interrupt(), runner, labels or contextlib.nullcontext(), \
            Reporter(con, steps=False, enabled=len(sources) > 1) as report:
        opts["mask_values"] = _mask_values(runner, model_path or "")
        opts["labels"] = labels
        rows, fatal = _predict_all(runner, sources, targets, opts, con, report)
    if fatal:
        raise UnetrtError(fatal[0] + (f" (+{len(fatal) - 1} more)" if len(fatal) > 1 else ""))
    if as_json:
        click.echo(json.dumps({"model": str(model_path or f"{triton_url}/{triton_model}"), "runner": type(runner).__name__, "notes": runner.notes,
                               "images": rows}, indent=2))


def _labels_runner(runner, model_path, device):
    """The (inactive) ONNX Runtime runner of the export's labels graph, checked against its manifest."""
    from ..artifacts import names
    from ..artifacts.refs import ArtifactRef
    from ..runtime import load

    form = runner.manifest.entry(ArtifactRef("onnx", "fp32", "labels")) if runner.manifest is not None else None
    folder = Path(model_path) if Path(model_path).is_dir() else Path(model_path).parent
    if form is None or not (folder / form.path).is_file():
        raise UnetrtError(f"--labels-graph: {folder} has no {names.ONNX_LABELS}", "an export written with "
                          "unet-export --labels-output", "re-export with --labels-output, or drop --labels-graph")
    return load(folder / form.path, backend="ort", device=device)


def _is_volume(path: str) -> bool:
    from ..runtime.volume import VOLUME_SUFFIXES

    return str(path).lower().endswith(VOLUME_SUFFIXES)


def _volume_target(path: Path, outputs: tuple[str, ...], i: int, n: int) -> Path:
    name = path.name[:-len(".nii.gz")] if path.name.lower().endswith(".nii.gz") else path.stem
    suffix = path.name[len(name):]
    if not outputs:
        return path.with_name(name + "_OUT" + suffix)
    if len(outputs) == 1 and is_folder_target(outputs[0]):
        return Path(outputs[0]) / (name + "_OUT" + suffix)
    if len(outputs) == n:
        return Path(outputs[i]) / (name + "_OUT" + suffix) if is_folder_target(outputs[i]) else Path(outputs[i])
    raise UnetrtError(f"{len(outputs)} output path(s) for {n} input volume(s)",
                      "one -o per input volume, or one folder (ending in /)", "fix -o")


def _read_volume(path: Path):
    """:func:`read_volume` with every unreadable file (empty, truncated, not an array) as one line."""
    from ..errors import InputError
    from ..runtime.volume import read_volume

    try:
        return read_volume(path)
    except (EOFError, OSError, ValueError) as exc:
        if isinstance(exc, UnetrtError):
            raise
        why = "the file is empty" if path.stat().st_size == 0 else str(exc) or type(exc).__name__
        raise InputError(f"cannot read volume {path}: {why}", "a .npy array (numpy.save) or a NIfTI file",
                         "check the file, or write it again") from None


def _predict_volumes(inputs, outputs, model_path, backend, device, precision, mask_threshold, tile, no_save, force,
                     as_json, con) -> None:
    """Volumes (.npy, NIfTI with nibabel): one label volume each, sliding windows when larger than the engine."""
    from ..runtime import load
    from ..runtime.volume import predict_volume, write_volume

    if not all(_is_volume(i) for i in inputs):
        raise UnetrtError("images and volumes mixed in -i", "only image files or only volumes (.npy, .nii, .nii.gz)",
                          "run unet-predict once per kind")
    paths = [Path(i) for i in inputs]
    expand_inputs([str(p) for p in paths])  # one line for a missing file or a name over 255 characters
    targets = [_volume_target(p, outputs, i, len(paths)) for i, p in enumerate(paths)]
    if not no_save:
        check_outputs(targets, paths + _model_files(model_path), force=force, formats=False)
    rows = []
    with load(model_path, backend=backend, device=device, precision=precision) as runner:
        for path, target in zip(paths, targets):
            volume, affine = _read_volume(path)
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
