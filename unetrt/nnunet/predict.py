"""An nnU-Net predictor on any :class:`~unetrt.runtime.base.Runner`, reproducing ``nnUNetPredictor``.

Per fold: pad to the patch size, tile with ``tile_step_size`` (0.5) like nnU-Net's
``compute_steps_for_sliding_window``, run the tiles *batched* (every mirrored copy of every tile of a
batch goes to the runner in one call), average the mirror predictions over every combination of the
allowed axes, weight each tile by nnU-Net's Gaussian importance map and normalise by the summed weights.
The folds' logits are averaged (as ``nnUNetPredictor`` does), then mapped back to the input's space
(:func:`unetrt.nnunet.preprocess.logits_to_output`).

Aggregation runs where the runner's outputs are: numpy on the host for CPU runners, torch on the GPU for
runners that return device tensors (``infer(..., to_host=False)`` of the CUDA backends).
``accumulate="float16"`` (default) sums the weighted tiles, the weights and the folds in
float16 like ``nnUNetPredictor`` does; its Gaussian falls to float16's smallest values at the patch
corners, so voxels covered only by tile corners (the image's own corners) carry float16 rounding there.
``accumulate="float32"`` is the more precise choice; it differs from nnU-Net by float16's rounding (a
few 1e-3 in probabilities, more at those corner voxels).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import names
from ..artifacts.manifest import Manifest, NnunetSection
from ..errors import ManifestError, RunnerError
from .preprocess import Preprocessed, logits_to_output, pad_to, preprocess

__all__ = ["NnunetPredictor", "gaussian_importance", "sliding_steps", "fold_dirs", "export_sections"]


@lru_cache(maxsize=4)
def gaussian_importance(patch: tuple[int, ...]) -> np.ndarray:
    """nnU-Net's importance map: a Gaussian (sigma = patch/8) scaled to max 10, in float16 as nnU-Net
    stores it, zeros replaced by the smallest nonzero value."""
    from scipy.ndimage import gaussian_filter

    tmp = np.zeros(patch)
    tmp[tuple(p // 2 for p in patch)] = 1
    g = gaussian_filter(tmp, [p / 8 for p in patch], 0, mode="constant", cval=0)
    g = (g / (np.max(g) / 10)).astype(np.float16)
    g[g == 0] = g[g != 0].min()
    return g.astype(np.float32)


def sliding_steps(size: Sequence[int], patch: Sequence[int], step: float) -> list[list[int]]:
    """Tile origins per axis, as nnU-Net's ``compute_steps_for_sliding_window``."""
    steps = []
    for s, p in zip(size, patch):
        n = int(np.ceil((s - p) / (p * step))) + 1
        stride = (s - p) / (n - 1) if n > 1 else 0
        steps.append([int(np.round(stride * i)) for i in range(n)])
    return steps


def fold_dirs(export_dir: str | Path) -> list[Path]:
    """The fold export directories of ``unet-export --nnunet`` output (or the directory itself)."""
    root = Path(export_dir).expanduser()
    if (root / names.MANIFEST).is_file():
        return [root]
    found = sorted(d for d in root.glob("fold_*") if (d / names.MANIFEST).is_file())
    if not found:
        raise ManifestError(f"{root} holds no nnU-Net export (no fold_<k>/{names.MANIFEST})",
                            "a directory written by unet-export --nnunet", "export with unet-export --nnunet first")
    return found


def export_sections(export_dir: str | Path, folds: Sequence[int | str] | None = None
                    ) -> tuple[list[Path], NnunetSection]:
    """The fold directories of an ``unet-export --nnunet`` directory (``folds``: only those) and their common
    ``nnunet`` section (with the first fold's number).

    Raises:
        ManifestError: No fold exports, a fold without ``nnunet`` section, missing folds, or folds that disagree.
    """
    dirs = fold_dirs(export_dir)
    sections = []
    for d in dirs:
        manifest = Manifest.read(d)
        if manifest.nnunet is None:
            raise ManifestError(f"{d / names.MANIFEST} has no nnunet section",
                                "an export written by unet-export --nnunet", "re-export with --nnunet")
        sections.append(manifest.nnunet)
    if folds is not None:
        wanted = {str(f) for f in folds}
        picked = [(d, s) for d, s in zip(dirs, sections) if str(s.fold) in wanted]
        if len(picked) != len(wanted):
            have = ", ".join(str(s.fold) for s in sections)
            raise ManifestError(f"folds {sorted(wanted)} requested; the export has {have}",
                                "folds the export holds", "pass --folds with those")
        dirs, sections = [d for d, _ in picked], [s for _, s in picked]
    first = sections[0]
    for d, s in zip(dirs, sections):
        same, ref = asdict(s), asdict(first)
        same.pop("fold"), ref.pop("fold")
        if same != ref:
            raise ManifestError(f"{d.name} has other nnU-Net settings than {dirs[0].name}",
                                "folds of one training run", "re-export the results folder")
    return dirs, first


class _Aggregator:
    """Gaussian-weighted sums of tile predictions, on the host (numpy) or on the device of torch outputs."""

    def __init__(self, like: Any, shape: tuple[int, ...], dtype: np.dtype, gauss: np.ndarray):
        self.device = not isinstance(like, np.ndarray)
        if self.device:
            import torch

            kind = torch.float16 if dtype == np.float16 else torch.float32
            self.acc = torch.zeros(shape, dtype=kind, device=like.device)
            self.weight = torch.zeros(shape[1:], dtype=kind, device=like.device)
            self.gauss = torch.as_tensor(gauss, device=like.device)
        else:
            self.acc, self.weight, self.gauss = np.zeros(shape, dtype), np.zeros(shape[1:], dtype), gauss

    def flip(self, x: Any, axes: tuple[int, ...]) -> Any:
        if not axes:
            return x
        dims = [a + 1 for a in axes]
        return x.flip(dims) if self.device else np.flip(x, dims)

    def add(self, where: tuple[Any, ...], mean: Any) -> None:
        self.acc[(slice(None), *where)] += mean * self.gauss
        self.weight[where] += self.gauss

    def result(self, revert: tuple[slice, ...]) -> np.ndarray:
        """The normalised sum, cropped to ``revert`` (a host array in the accumulation dtype)."""
        self.acc /= self.weight
        out = self.acc[(slice(None), *revert)]
        return out.cpu().numpy() if self.device else out


@dataclass
class _Job:
    tile: int
    axes: tuple[int, ...]


class NnunetPredictor:
    """Sliding-window nnU-Net inference over one runner per fold.

    Args:
        runners: One runner per fold (activated by the predictor when used as a context manager).
        section: The folds' common ``nnunet`` manifest section.
        batch_size: Network inputs per runner call (tiles x mirrored copies).
        use_mirroring: Mirroring TTA over ``section.mirror_axes`` (nnU-Net's default: on).
        tile_step_size: Overrides ``section.tile_step_size``.
        accumulate: ``"float16"`` (as nnU-Net) or ``"float32"`` aggregation of tiles and folds.
    """

    def __init__(self, runners: Sequence[Any], section: NnunetSection, *, batch_size: int = 8,
                 use_mirroring: bool = True, tile_step_size: float | None = None, accumulate: str = "float16"):
        if accumulate not in ("float16", "float32"):
            raise RunnerError(f"accumulate={accumulate!r}", "float16 or float32", "pick one of those")
        self.accumulate = np.dtype(accumulate)
        if not runners:
            raise RunnerError("no fold runner", "one runner per fold", "export the folds with unet-export --nnunet")
        self.runners = list(runners)
        self.section = section
        self.batch_size = max(1, int(batch_size))
        self.use_mirroring = use_mirroring
        self.tile_step_size = tile_step_size or section.tile_step_size

    # construction -----------------------------------------------------------------------------
    @classmethod
    def from_export(cls, export_dir: str | Path, backend: str = "auto", device: str = "auto", *,
                    precision: str | None = None, folds: Sequence[int | str] | None = None, **kw: Any) -> "NnunetPredictor":
        """Open the folds of an ``unet-export --nnunet`` directory (``kw``: predictor and runner options).

        Raises:
            ManifestError: No fold exports, a fold without ``nnunet`` section, or folds that disagree.
        """
        from ..runtime.loader import load

        own = {k: kw.pop(k) for k in ("batch_size", "use_mirroring", "tile_step_size", "accumulate") if k in kw}
        dirs, first = export_sections(export_dir, folds)
        runners = [load(d, backend, device, precision=precision, **kw) for d in dirs]
        return cls(runners, first, **own)

    def __enter__(self) -> "NnunetPredictor":
        for r in self.runners:
            r.activate()
        return self

    def __exit__(self, *exc) -> None:
        for r in self.runners:
            r.deactivate()

    # inference --------------------------------------------------------------------------------
    @property
    def mirror_combinations(self) -> list[tuple[int, ...]]:
        axes = self.section.mirror_axes if self.use_mirroring else None
        combos: list[tuple[int, ...]] = [()]
        if axes:
            combos += [c for i in range(len(axes)) for c in itertools.combinations(axes, i + 1)]
        return combos

    def _run(self, runner: Any, batch: np.ndarray) -> Any:
        """One runner call: a float32 numpy array, or a float32 torch tensor on the runner's device."""
        meta = runner.input_metadata
        name = next(iter(meta))
        dtype = np.dtype(meta[name].dtype)
        out = next(iter(runner.infer({name: np.ascontiguousarray(batch, dtype=dtype)}, to_host=False).values()))
        return np.asarray(out, np.float32) if isinstance(out, np.ndarray) else out.float()

    def _tiles(self, shape: tuple[int, ...]) -> list[tuple[Any, ...]]:
        patch = list(self.section.patch_size)
        if len(patch) == len(shape) - 1:  # 2-D configuration: tiles of each slice
            steps = sliding_steps(shape[1:], patch, self.tile_step_size)
            return [(z, *[slice(o, o + p) for o, p in zip(origin, patch)])
                    for z in range(shape[0]) for origin in itertools.product(*steps)]
        steps = sliding_steps(shape, patch, self.tile_step_size)
        return [tuple(slice(o, o + p) for o, p in zip(origin, patch)) for origin in itertools.product(*steps)]

    def sliding_window(self, runner: Any, data: np.ndarray) -> np.ndarray:
        """``(C, *spatial)`` preprocessed data -> ``(K, *spatial)`` logits of one fold (``accumulate`` dtype).

        A runner that returns device tensors (CUDA backends with ``to_host=False``) has its tiles flipped,
        averaged, weighted and summed on its device; only the fold's result comes back to the host.
        """
        patch = list(self.section.patch_size)
        padded, revert = pad_to(data, patch if len(patch) == data.ndim - 1 else [1, *patch])
        tiles = self._tiles(padded.shape[1:])
        combos = self.mirror_combinations
        gauss = gaussian_importance(tuple(patch)) if self.section.use_gaussian else np.ones(patch, np.float32)
        agg: _Aggregator | None = None
        jobs = [_Job(t, axes) for t in range(len(tiles)) for axes in combos]
        partial: dict[int, Any] = {}
        seen: dict[int, int] = {}
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            batch = np.stack([self._flip(padded[(slice(None), *tiles[j.tile])], j.axes) for j in chunk])
            preds = self._run(runner, batch)
            if agg is None:
                agg = _Aggregator(preds, (self.section.num_outputs, *padded.shape[1:]), self.accumulate, gauss)
            for j, pred in zip(chunk, preds):
                pred = agg.flip(pred, j.axes)
                partial[j.tile] = pred if j.tile not in partial else partial[j.tile] + pred
                seen[j.tile] = seen.get(j.tile, 0) + 1
                if seen[j.tile] == len(combos):
                    agg.add(tiles[j.tile], partial.pop(j.tile) / len(combos))
        return agg.result(revert)

    @staticmethod
    def _flip(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        """Flip spatial ``axes`` of a ``(C, *patch)`` array."""
        return np.flip(x, [a + 1 for a in axes]) if axes else x

    def predict_logits(self, data: np.ndarray) -> np.ndarray:
        """Preprocessed data -> fold-averaged logits (network space)."""
        total = None
        for runner in self.runners:
            logits = self.sliding_window(runner, data)
            total = logits if total is None else total + logits
        return (total / np.asarray(len(self.runners), total.dtype)).astype(np.float32)

    def predict(self, image: np.ndarray, spacing: Sequence[float], *,
                probabilities: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """``(C, *spatial)`` image at ``spacing`` -> ``(segmentation, probabilities or None)`` in its space."""
        pre: Preprocessed = preprocess(image, list(spacing), self.section)
        logits = self.predict_logits(pre.data)
        return logits_to_output(logits, pre, self.section, probabilities)
