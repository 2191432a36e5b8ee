"""Command line: ``unetrt`` (a group of lazily imported commands) and the scripts ``unet-export``,
``unet-predict`` and ``unet-bench`` (one command each).

Commands are thin: they parse options into the public API's values and render results.
``UnetrtError`` becomes one clean error line and a non-zero exit; ``--debug`` (or ``UNETRT_DEBUG=1``)
keeps the traceback. Each command lives in its own module, imported only when it runs (or when
``--help`` lists it), so ``unetrt --help`` does not import torch.
"""

from __future__ import annotations

import importlib

import click

#: command name -> "module:attribute" under unetrt.cli
COMMANDS = {
    "export": "export:export_cmd",
    "predict": "predict:predict_cmd",
    "bench": "bench:bench_cmd",
    "models": "models:models_cmd",
    "inspect": "inspect_cmd:inspect_cmd",
    "triton": "triton:triton_cmd",
    "serve": "serve:serve_cmd",
    "loadtest": "loadtest:loadtest_cmd",
    "build": "build_cmds:build_cmd",
    "refit": "build_cmds:refit_cmd",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="unetrt")
def main() -> None:
    """unetrt: UNet models from PyTorch to ONNX, FP16 and TensorRT."""


__all__ = ["main", "COMMANDS"]
