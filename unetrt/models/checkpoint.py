"""Checkpoint loading: safe ``torch.load``, unwrapping of common formats, strict application.

Accepted formats: a plain state dict; milesial/Pytorch-UNet checkpoints (state dict plus a
``mask_values`` entry); dicts nesting the weights under ``state_dict`` / ``model`` (training
bookkeeping such as ``epoch`` or ``optimizer`` is ignored); keys prefixed with ``module.``
(DataParallel) or ``_orig_mod.`` (torch.compile). Files are always read with
``weights_only=True``, so a pickled model object is refused rather than executed.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from ..errors import CheckpointError
from .build_info import build_config
from .checkpoint_match import describe_best_match

#: Keys under which training scripts commonly nest the weights, tried in this order.
NESTING_KEYS = ("state_dict", "model_state_dict", "model", "net", "network_weights")
#: Prefixes added by wrappers (DataParallel / DistributedDataParallel, torch.compile).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_SAVE_HINT = "save the weights instead: torch.save(model.state_dict(), path)"


def _read(path: Any) -> Any:
    """``torch.load`` with ``weights_only=True``, turning every failure into CheckpointError."""
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<file object>"
    if isinstance(path, (str, os.PathLike)):
        if not os.path.exists(path):
            raise CheckpointError(f"checkpoint {name!r} does not exist", "a path to a .pt/.pth file",
                                  "check the path (relative paths start from the current directory)")
        if os.path.isdir(path):
            raise CheckpointError(f"checkpoint {name!r} is a directory", "a .pt/.pth file",
                                  "pass the file itself")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = _unsafe_globals(path)
        if unsafe or "Unsupported global" in str(exc):
            what = f"checkpoint {name!r} holds a pickled object"
            what += f" ({_first_few(unsafe)})" if unsafe else ""
            raise CheckpointError(what + " that weights_only loading refuses to execute",
                                  "a state dict (tensors only)", _SAVE_HINT) from None
        raise _corrupt(name, exc) from None
    except Exception as exc:  # RuntimeError (not a zip), EOFError, struct.error, ...
        raise _corrupt(name, exc) from None


def _unsafe_globals(path: Any) -> list[str]:
    """The classes/functions a checkpoint pickles that ``weights_only`` refuses (torch's own scan)."""
    try:
        if hasattr(path, "seek"):
            path.seek(0)
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint, unreadable: no names to show
        return []
    return sorted(found, key=lambda g: (g.startswith("torch."), g))  # the user's own classes first


def _corrupt(name: str, exc: BaseException) -> CheckpointError:
    text = str(exc)
    if "WeightsUnpickler error:" in text:  # keep the unpickler's reason, not torch's long preamble
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    detail = " ".join(text.split())[:160] or "no detail"
    return CheckpointError(
        f"checkpoint {name!r} is not a readable torch file ({type(exc).__name__}: {detail})",
        "a file written by torch.save", "re-download or re-save it; the file may be truncated")


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and any(isinstance(v, torch.Tensor) for v in obj.values())


def _strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> list[str]:
    """Strip :data:`WRAPPER_PREFIXES` in place (stacked ones too); return them in the order removed."""
    stripped: list[str] = []
    while True:
        prefix = next((p for p in WRAPPER_PREFIXES if any(k.startswith(p) for k in state)), None)
        if prefix is None:
            return stripped
        consume_prefix_in_state_dict_if_present(state, prefix)
        stripped.append(prefix)


def load_checkpoint(path: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint and return ``(state_dict, metadata)``.

    Args:
        path: File path (str or PathLike) or a readable binary file object.

    Returns:
        The state dict (keys without wrapper prefixes, tensors only) and metadata:
        ``format`` (``"state_dict"``, ``"milesial"`` or ``"nested:<key>"``), ``mask_values``
        (milesial checkpoints only), ``extra_keys`` (non-weight entries that were ignored) and
        ``stripped_prefixes``.

    Raises:
        CheckpointError: missing or corrupt file, a pickled model object, or no tensors.
    """
    obj = _read(path)
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<file object>"
    meta: dict[str, Any] = {"format": "state_dict", "extra_keys": [], "stripped_prefixes": []}
    if isinstance(obj, Mapping) and not _is_tensor_dict(obj):
        for key in NESTING_KEYS:
            if _is_tensor_dict(obj.get(key)):
                meta["format"] = f"nested:{key}"
                meta["extra_keys"] = sorted(str(k) for k in obj if k != key)
                obj = obj[key]
                break
    if not _is_tensor_dict(obj):
        kind = type(obj).__name__
        keys = f" with keys {', '.join(map(str, list(obj)[:6]))}" if isinstance(obj, Mapping) else ""
        raise CheckpointError(f"checkpoint {name!r} contains no tensors (a {kind}{keys})",
                              "a state dict, possibly nested under 'state_dict' or 'model'", _SAVE_HINT)
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if key == "mask_values" and not isinstance(value, torch.Tensor):
            meta["mask_values"] = value
            meta["format"] = "milesial"
        elif not isinstance(value, torch.Tensor):
            meta["extra_keys"].append(str(key))
        else:
            state[str(key)] = value
    meta["stripped_prefixes"] = _strip_wrapper_prefixes(state)
    return state, meta


def _first_few(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")


def _diff(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]):
    """Missing, unexpected and mis-shaped keys of ``given`` relative to ``expected``."""
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    shaped = [k for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
    return missing, unexpected, shaped


def apply_checkpoint(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load ``state_dict`` into ``model`` strictly (BatchNorm ``num_batches_tracked`` may be absent).

    Args:
        model: Target module; its ``config["arch"]`` (if any) names it in messages.
        state_dict: Weights, e.g. from :func:`load_checkpoint`.

    Raises:
        CheckpointError: keys or shapes differ. The one-line message lists the first missing,
            unexpected and mis-shaped keys with counts and names the zoo variant (and the
            arguments) whose state dict matches the checkpoint best.
    """
    own = model.state_dict()
    missing, unexpected, shaped = _diff(own, state_dict)
    if not (missing or unexpected or shaped):
        full = dict(state_dict)
        for key in own:  # old BatchNorm checkpoints lack the counter
            full.setdefault(key, own[key])
        model.load_state_dict(full, strict=True)
        return
    config = build_config(model)
    arch = config.pop("arch", None) or config.get("factory") or type(model).__name__
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) [{_first_few(missing)}]")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) [{_first_few(unexpected)}]")
    if shaped:
        shown = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                 for k in shaped]
        parts.append(f"{len(shaped)} mis-shaped key(s) [{_first_few(shown, 3)}]")
    args = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "factory")
    raise CheckpointError(f"checkpoint does not fit model {arch!r}: " + "; ".join(parts),
                          f"the state dict of {arch!r}" + (f" built with {args}" if args else ""),
                          describe_best_match(state_dict))


def load_state_dict_into(model: nn.Module, path: Any) -> dict[str, Any]:
    """Read ``path`` with :func:`load_checkpoint` and apply it with :func:`apply_checkpoint`.

    Returns:
        The checkpoint metadata (e.g. ``mask_values`` of milesial checkpoints).
    """
    state, meta = load_checkpoint(path)
    apply_checkpoint(model, state)
    return meta
