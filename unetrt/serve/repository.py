"""Write a Triton model repository from a unetrt export directory.

Layout (``name`` = ``unet``; with one platform the model is called ``unet``, with several the
python model keeps ``unet`` and the others get a suffix)::

    REPO/unet/config.pbtxt, 1/model.py + the export's artifacts        (backend: python, unetrt runner)
    REPO/unet_onnx/config.pbtxt, 1/model.onnx                          (platform: onnxruntime_onnx)
    REPO/unet_tensorrt/config.pbtxt, 1/model.plan                      (platform: tensorrt_plan)
    REPO/unet_tensorrt/export/ (--build-on-start: ONNX + manifest; ``unetrt build REPO`` writes 1/model.plan)
    REPO/unet_image/ (ensemble), unet_preprocess/, unet_postprocess/   (--with-preprocess)
    REPO/unetrt_repository.json                                        (what was written, notes)

Every config is a ``ModelConfig`` message, written as text, parsed back and validated; the
repository is staged in a temporary directory beside ``REPO`` and renamed into place only when
complete, so it is either whole or absent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import OutputError, ServeError
from . import configs
from .contract import Contract, read_contract
from .ensemble import write_ensemble
from .layout import PYTHON_SHIM, RepositoryPlan, check_target, staged_repository, write_config

PLATFORMS = ("python", "onnx", "tensorrt")
SUFFIX = {"python": "", "onnx": "_onnx", "tensorrt": "_tensorrt"}
BATCHING_NOTE = ("Triton's dynamic batcher merges only requests of equal shape: with dynamic H/W, send equal "
                 "sizes (e.g. tiles or resized images) to get batches larger than 1.")
PLAN_NOTE = ("A TensorRT plan runs only on the TensorRT version that built it and on GPUs it was built for: "
             "use a Triton release whose TensorRT matches {flavour} {version}.")


def _platform_list(platforms: str | Sequence[str]) -> list[str]:
    items = [platforms] if isinstance(platforms, str) else list(platforms)
    names = [p.strip().lower() for item in items for p in str(item).split(",") if p.strip()]
    if "all" in names:
        names = list(PLATFORMS)
    bad = [p for p in names if p not in PLATFORMS]
    if bad or not names:
        raise ServeError(f"unknown platform(s) {', '.join(bad) or '(none)'}", f"one or more of {', '.join(PLATFORMS)} "
                         "or 'all'", "fix --platform")
    return list(dict.fromkeys(names))


def write_repository(export_dir: str | os.PathLike, repo: str | os.PathLike, *, name: str = "unet",
                     platforms: str | Sequence[str] = "python", max_batch: int | None = None, instances: int = 1,
                     max_queue_delay_us: int = 100, dynamic_batching: bool = True, with_preprocess: bool = False,
                     device: str = "cpu", scale: float = 1.0, mask_threshold: float = 0.5,
                     threads: int | None = None, shape_buckets: str | Sequence[int] | None = None,
                     max_pixels: int | None = None, force: bool = False,
                     build_on_start: bool = False) -> RepositoryPlan:
    """Write a Triton model repository for an export (see the module docstring for the layout).

    Args:
        export_dir: A directory written by ``unet-export`` (``manifest.json`` + artifacts).
        repo: The repository directory to create (replaced only with ``force``).
        name: Base model name.
        platforms: ``"python"``, ``"onnx"``, ``"tensorrt"``, a list or comma list of them, or ``"all"``.
        max_batch: ``max_batch_size`` (default: the engine profile's max N, else 8); at most the
            profile's max N for ``tensorrt``.
        instances: Instances per device (``instance_group.count``).
        max_queue_delay_us: Dynamic batcher queue delay.
        dynamic_batching: Write a ``dynamic_batching`` section.
        with_preprocess: Add the ``<name>_image`` ensemble (image bytes in, PNG mask out).
        device: ``"cpu"`` or ``"gpu"`` instances for the python and ONNX models (TensorRT: always GPU).
        scale: Image downscaling factor of the ensemble's preprocessing (milesial's ``--scale``).
        mask_threshold: Sigmoid threshold of one-class models in the ensemble.
        threads: ONNX Runtime intra-op threads of each python-model instance on CPU (default: ORT's).
        shape_buckets: Sizes (``"256,512,1024"`` or ints) the ensemble pads H and W up to, so mixed-size
            requests batch (needs ``with_preprocess``; see :mod:`unetrt.serve.buckets`).
        max_pixels: Most pixels one request may carry (N x H x W of a tensor, H x W of an image;
            default :data:`~unetrt.serve.configs.DEFAULT_MAX_PIXELS`): the python models and the
            ensemble answer larger requests with 400 / INVALID_ARG.
        force: Replace an existing non-empty ``repo``.
        build_on_start: Ship the ONNX (and the manifest's engine entry) instead of a plan for the
            ``tensorrt`` model: ``unetrt build REPO``, run in the serving image before the server starts
            (e.g. a Kubernetes init container), builds ``1/model.plan`` with the server's TensorRT.

    Returns:
        The :class:`RepositoryPlan` written (``root`` is the final directory).

    Raises:
        ServeError: An unknown platform, a rejected name, a missing artifact, or bad sizes.
        OutputError: ``repo`` is a file, or non-empty without ``force``.
    """
    from .nnunet_model import is_nnunet_export, write_nnunet_repository

    if is_nnunet_export(export_dir):  # the whole nnU-Net pipeline as one python-backend model
        return write_nnunet_repository(export_dir, repo, name=name, platforms=platforms, device=device, force=force,
                                       with_preprocess=with_preprocess, instances=instances, threads=threads)
    kinds = _platform_list(platforms)
    if build_on_start and "tensorrt" not in kinds:
        raise ServeError(f"--build-on-start with --platform {','.join(kinds)}", "--platform tensorrt (or all): "
                         "the plan is what is built on start", "add --platform tensorrt or drop --build-on-start")
    if device not in ("cpu", "gpu"):
        raise ServeError(f"device {device!r}", "'cpu' or 'gpu'", "fix --device")
    if instances < 1 or max_queue_delay_us < 0 or (max_batch is not None and max_batch < 1):
        raise ServeError(f"instances={instances}, max_queue_delay_us={max_queue_delay_us}, max_batch={max_batch}",
                         "instances >= 1, a queue delay >= 0 and max batch >= 1", "fix the options")
    configs.check_name(name)
    from .buckets import parse_buckets

    buckets = parse_buckets(shape_buckets)
    if buckets and not with_preprocess:
        raise ServeError("--shape-buckets without --with-preprocess", "the NAME_image ensemble (it pads and crops)",
                         "add --with-preprocess")
    if max_pixels is not None and int(max_pixels) < 1:
        raise ServeError(f"max_pixels={max_pixels}", "a positive pixel count", "fix --max-pixels")
    contract = read_contract(export_dir)
    if max_pixels is not None:
        contract.max_pixels = int(max_pixels)
    names = {k: name + (SUFFIX[k] if len(kinds) > 1 else "") for k in kinds}
    for extra in ("image", "preprocess", "postprocess") if with_preprocess else ():
        configs.check_name(f"{name}_{extra}")
    target = check_target(Path(repo), force)
    if target == contract.directory or contract.directory in target.parents or target in contract.directory.parents:
        raise OutputError(f"repository {target} overlaps the export directory {contract.directory}",
                          "a repository outside the export", "choose another -o")
    plan = RepositoryPlan(target, models=dict(names))
    common = dict(instances=instances, max_queue_delay_us=max_queue_delay_us, dynamic_batching=dynamic_batching)
    with staged_repository(plan) as stage:
        for kind in kinds:
            writer = {"python": _python_model, "onnx": _onnx_model, "tensorrt": _tensorrt_model}[kind]
            writer(stage, names[kind], contract, plan, max_batch=max_batch, device=device, threads=threads,
                   **({"build_on_start": build_on_start} if kind == "tensorrt" else {}), **common)
        if with_preprocess:
            main = names.get("python") or names.get("onnx") or names["tensorrt"]
            write_ensemble(stage, name, main, contract, plan, scale=scale, mask_threshold=mask_threshold,
                           device=device, instances=instances, shape_buckets=buckets)
        plan.notes.append(BATCHING_NOTE)
    return plan


def _batch(contract: Contract, max_batch: int | None, limit: int | None) -> int:
    if not contract.dynamic_batch:
        if max_batch not in (None, 1):
            raise ServeError(f"--max-batch {max_batch} for an export with a static batch of {contract.static_n}",
                             "no --max-batch", "re-export with a dynamic batch axis")
        return 0
    if limit is not None and max_batch is not None and max_batch > limit:
        raise ServeError(f"--max-batch {max_batch} exceeds the engine profile's max batch {limit}",
                         f"--max-batch <= {limit}", f"lower --max-batch or rebuild the engine with a larger max N")
    return max_batch or limit or 8


def _io(contract: Contract, dims_in: Sequence[int], batched: bool) -> tuple[list, list]:
    lead = [] if batched else [contract.static_n]
    dims_out = [contract.classes, -1 if dims_in[-2] == -1 or contract.geometry != "same" else dims_in[-2],
                -1 if dims_in[-1] == -1 or contract.geometry != "same" else dims_in[-1]]
    return ([configs.TensorSpec(contract.input_name, contract.input_dtype, tuple(lead + list(dims_in)))],
            [configs.TensorSpec(contract.output_name, contract.output_dtype, tuple(lead + dims_out))])


def _python_model(stage: Path, name: str, contract: Contract, plan: RepositoryPlan, *, max_batch, device,
                  threads, **common) -> None:
    batch = _batch(contract, max_batch, None)
    inputs, outputs = _io(contract, contract.dims(), batch > 0)
    params = contract.parameters()
    if threads is not None:
        params["unetrt.threads"] = str(int(threads))
    config = configs.model_config(name, inputs=inputs, outputs=outputs, max_batch_size=batch, backend="python",
                                  kind="KIND_GPU" if device == "gpu" else "KIND_CPU", parameters=params, **common)
    version = write_config(stage, config, plan) / "1"
    (version / "model.py").write_text(PYTHON_SHIM.format(doc="the export's unetrt runner (ONNX Runtime on CPU "
                                                       "instances, the TensorRT engine on GPU ones).",
                                                   cls="SegmentationModel"))
    for path in contract.files():
        contract.copy(path, version / path.name)


def _onnx_model(stage: Path, name: str, contract: Contract, plan: RepositoryPlan, *, max_batch, device,
                threads, **common) -> None:
    onnx = contract.require("fp32", "onnx")
    batch = _batch(contract, max_batch, None)
    inputs, outputs = _io(contract, contract.dims(), batch > 0)
    accel = {"precision_mode": "FP16", "max_workspace_size_bytes": str(1 << 30)} if device == "gpu" else None
    config = configs.model_config(name, inputs=inputs, outputs=outputs, max_batch_size=batch,
                                  platform="onnxruntime_onnx", kind="KIND_GPU" if device == "gpu" else "KIND_CPU",
                                  parameters=contract.parameters(), gpu_accelerator=accel, **common)
    contract.copy(onnx, write_config(stage, config, plan) / "1" / "model.onnx")


def _tensorrt_model(stage: Path, name: str, contract: Contract, plan: RepositoryPlan, *, max_batch, device,
                    threads, build_on_start: bool = False, **common) -> None:
    if build_on_start:
        from .build_on_start import planned_engine, stage_export

        engine = planned_engine(contract)
    else:
        engine = contract.engine()
    dims, max_n = contract.plan_dims(engine)
    batch = _batch(contract, max_batch, max_n) if max_n is not None else 0
    inputs, outputs = _io(contract, dims, batch > 0)
    config = configs.model_config(name, inputs=inputs, outputs=outputs, max_batch_size=batch,
                                  platform="tensorrt_plan", kind="KIND_GPU", parameters=contract.parameters(),
                                  **common)
    folder = write_config(stage, config, plan)
    if build_on_start:
        stage_export(contract, engine, folder, plan)
        return
    contract.copy(contract.directory / engine.path, folder / "1" / "model.plan")
    plan.notes.append(PLAN_NOTE.format(flavour=engine.flavour, version=engine.version or "?"))
    if engine.flavour == "tensorrt-rtx":
        plan.notes.append("this plan was built by TensorRT-RTX: Triton's tensorrt_plan backend runs plans of "
                          "full TensorRT, so rebuild the engine with TensorRT (unet-export --trt tensorrt) on a "
                          "machine with the server's TensorRT version before serving it")
