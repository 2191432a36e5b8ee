"""``unetrt models``: the zoo variants."""

from __future__ import annotations

import json

import click

from .options import handle_errors


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
@handle_errors
def models_cmd(as_json):
    """List the zoo variants with parameters, alignment and geometry."""
    import torch

    from rich.console import Console
    from rich.table import Table

    from ..models import create_model, get_spec, list_models

    rows = []
    for name in list_models():
        spec = get_spec(name)
        with torch.device("meta"):
            params = sum(p.numel() for p in create_model(name).parameters())
        rows.append({**spec.to_dict(), "params": params})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="unetrt zoo (default kwargs)", title_justify="left")
    for col in ("name", "params", "in/classes/width", "alignment", "min size", "geometry"):
        table.add_column(col)
    for r in rows:
        d = r["defaults"]
        table.add_row(r["name"], f"{r['params'] / 1e6:.2f}M",
                      f"{d.get('in_channels')}/{d.get('num_classes')}/{d.get('width')}",
                      str(r["alignment"]), str(r["min_size"]), r["geometry"])
    Console().print(table)
