"""``unetrt inspect``: what the manifest and the file say about an artifact."""

from __future__ import annotations

import json

import click

from .options import handle_errors


@click.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@handle_errors
def inspect_cmd(path, as_json):
    """What unetrt knows about an exported .onnx, .engine or export directory."""
    from rich.console import Console

    from ..artifacts.inspection import describe

    info = describe(path)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    con = Console()
    con.print(f"[bold]{info['path']}[/]  manifest: {info['manifest'] or 'none beside it'}")
    if "manifest_match" in info:
        con.print("  sha256 matches the manifest" if info["manifest_match"] else
                  "  [red]sha256 does NOT match the manifest: the file changed since export[/]")
    if info.get("model"):
        m = info["model"]
        con.print(f"  model  {m.get('arch') or m.get('factory')} {m.get('kwargs')} ({m.get('params'):,} params)")
    if info.get("input"):
        i = info["input"]
        con.print(f"  input  {i['name']} C={i['channels']} alignment {i['alignment']} min size {i['min_size']} "
                  f"dynamic {[k for k, v in i['dynamic'].items() if v]}")
    for key in ("onnx", "engine", "fp16", "verification", "layers"):
        if info.get(key) is not None:
            con.print(f"  {key}", info[key])
    for a in info.get("artifacts", []):
        con.print(f"  artifact {a}")
