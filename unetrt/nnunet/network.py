"""The network of an nnU-Net plan, built with ``dynamic_network_architectures`` (what nnU-Net builds).

:func:`build_network` is also the export's model factory (``unetrt.nnunet.network:build_network``):
its keyword arguments are the plan's ``architecture`` entry plus the channel counts, all JSON, so the
manifest's ``model`` section rebuilds the same network.
"""

from __future__ import annotations

import pkgutil
from typing import Any, Sequence

from torch import nn

from ..errors import MissingDependencyError, ModelConfigError

__all__ = ["build_network", "ARCH_PACKAGE", "FACTORY"]

#: Network classes are only taken from this package (a plan naming anything else is refused).
ARCH_PACKAGE = "dynamic_network_architectures."
#: Layer classes the plans may name for ``conv_op``, ``norm_op``, ``dropout_op`` and ``nonlin``.
LAYER_PACKAGES = ("torch.nn.",)
FACTORY = "unetrt.nnunet.network:build_network"


def _resolve(name: str, allowed: Sequence[str], what: str) -> Any:
    if not isinstance(name, str) or not name.startswith(tuple(allowed)):
        raise ModelConfigError(f"the plans name {what} {name!r}", f"a class under {' or '.join(allowed)}",
                               "use a plans.json written by nnU-Net v2 with dynamic_network_architectures networks")
    try:
        return pkgutil.resolve_name(name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelConfigError(f"the plans name {what} {name!r}, which does not import ({type(exc).__name__})",
                               "a class of the installed dynamic_network_architectures / torch",
                               "upgrade dynamic_network_architectures or fix the plans") from None


def build_network(network_class_name: str, arch_kwargs: dict[str, Any], kw_requires_import: Sequence[str],
                  input_channels: int, num_classes: int, initialize: bool = False) -> nn.Module:
    """Instantiate the plan's network without deep supervision (what nnU-Net predicts with).

    Args:
        network_class_name: ``architecture.network_class_name`` of the configuration.
        arch_kwargs: ``architecture.arch_kwargs``.
        kw_requires_import: ``architecture._kw_requires_import`` (kwargs naming classes).
        input_channels: Image channels (``dataset.json`` channel_names).
        num_classes: Segmentation heads (labels, or regions for region-based datasets).
        initialize: Apply the network's own weight init (as nnU-Net does before training).

    Raises:
        MissingDependencyError: dynamic_network_architectures is not installed.
        ModelConfigError: An unknown or non-importable class, or kwargs the class does not take.
    """
    try:
        import dynamic_network_architectures  # noqa: F401
    except ImportError:
        raise MissingDependencyError("dynamic_network_architectures is not installed",
                                     "the nnU-Net network library", "pip install 'unetrt[nnunet]'") from None
    cls = _resolve(network_class_name, [ARCH_PACKAGE], "network class")
    kwargs = dict(arch_kwargs)
    for key in kw_requires_import:
        if kwargs.get(key) is not None:
            kwargs[key] = _resolve(kwargs[key], LAYER_PACKAGES, key)
    kwargs["deep_supervision"] = False
    try:
        net = cls(input_channels=input_channels, num_classes=num_classes, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ModelConfigError(f"{network_class_name.rsplit('.', 1)[-1]} rejects the plan's arch_kwargs "
                               f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})",
                               "arch_kwargs written by nnU-Net for this class", "check plans.json") from None
    if initialize and hasattr(net, "initialize"):
        net.apply(net.initialize)
    return net.eval()
