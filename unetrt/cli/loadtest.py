"""``unetrt loadtest``: closed-loop load against a Triton model (throughput, p50/p90/p99, errors)."""

from __future__ import annotations

import json

import click

from .options import Shape, handle_errors


@click.command("loadtest")
@handle_errors
@click.argument("url")
@click.option("--model", default="unet", show_default=True, help="Model name on the server.")
@click.option("--concurrency", default="1,2,4,8", show_default=True, help="Comma list of client thread counts.")
@click.option("--requests", "per_worker", type=click.IntRange(min=1), default=25, show_default=True,
              help="Timed requests per client thread.")
@click.option("--shape", "shapes", type=Shape((4,)), multiple=True, help="Request NxCxHxW (repeat to mix sizes; "
              "default 1xCx64x64).")
@click.option("--json", "as_json", is_flag=True, help="Results as JSON on stdout.")
def loadtest_cmd(url, model, concurrency, per_worker, shapes, as_json):
    """Load-test URL (http://HOST:PORT or grpc://HOST:PORT) with random inputs."""
    import numpy as np

    from ..errors import UnetrtError
    from ..serve.client import TritonClient
    from ..serve.loadtest import run_load, triton_infer

    try:
        levels = [int(c) for c in concurrency.split(",")]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise UnetrtError(f"--concurrency {concurrency!r}", "a comma list of positive integers", "e.g. 1,2,4,8")
    with TritonClient(url) as client:
        config = client.model_config(model)
    channels = int(config["input"][0]["dims"][0])
    rng = np.random.default_rng(0)
    inputs = [rng.random(s, dtype=np.float32) for s in (shapes or [(1, channels, 64, 64)])]
    make, close = triton_infer(url, model)
    results = [run_load(make, inputs, concurrency=c, requests_per_worker=per_worker, label=url, close=close)
               for c in levels]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        _table(model, url, results)
    failed = sum(r.errors for r in results)
    if failed:
        sample = next((e for r in results for e in r.error_samples), "no message")
        raise UnetrtError(f"{failed} of {sum(r.requests for r in results)} requests failed (first: {sample})",
                          "every request answered with a valid output", "fix what the first error says")


def _table(model, url, results) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model} at {url}")
    for col in ("concurrency", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms"):
        table.add_column(col, justify="right")
    for r in results:
        lat = r.latency_ms
        table.add_row(str(r.concurrency), str(r.requests), str(r.errors), f"{r.throughput_rps:.1f}",
                      *(f"{lat[k]:.1f}" if k in lat else "-" for k in ("p50", "p90", "p99")))
    Console().print(table)
