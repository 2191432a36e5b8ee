"""``unetrt inspect``: what the manifest and the file say about an artifact; exit 1 on any problem."""

from __future__ import annotations

import json

import click

from ..errors import UnetrtError
from .options import handle_errors, make_console


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape)


def _kwargs(kwargs: dict | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (kwargs or {}).items()) or "defaults"


def _lines(info: dict) -> list[str]:
    """The readable summary, one fact per line (no reprs; hashes whole)."""
    lines = [f"{info['path']}  ({info.get('kind') or 'unknown kind'}; manifest: {info['manifest'] or 'none beside it'})"]
    m = info.get("model")
    if m:
        params = f", {m['params']:,} params" if m.get("params") is not None else ""
        lines.append(f"  model     {m.get('arch') or m.get('factory')} ({_kwargs(m.get('kwargs'))}{params}); "
                     f"weights {m.get('weights') or ('checkpoint' if m.get('checkpoint') else 'unknown')}")
    i = info.get("input")
    if i:
        dyn = [k for k, v in (i.get("dynamic") or {}).items() if v]
        lines.append(f"  input     {i['name']} N x {i['channels']} x H x W {i.get('dtype', '')}, alignment "
                     f"{i['alignment']}, min size {i['min_size']}, dynamic: {', '.join(dyn) or 'none'}")
    o = info.get("output")
    if o:
        lines.append(f"  output    {o['name']} {o.get('classes')} classes, geometry {o.get('geometry')}")
    if info.get("sha256"):
        lines.append(f"  sha256    {info['sha256']}  ({info['bytes']:,} bytes)")
    if "manifest_match" in info:
        lines.append("  manifest  sha256 matches" if info["manifest_match"] else "  manifest  sha256 does NOT match")
    onnx = info.get("onnx")
    if onnx:
        ins = "; ".join(f"{t['name']} {t['dtype']} [{', '.join(map(str, t['shape']))}]" for t in onnx["inputs"])
        outs = "; ".join(f"{t['name']} {t['dtype']} [{', '.join(map(str, t['shape']))}]" for t in onnx["outputs"])
        lines.append(f"  onnx      opset {onnx['opset']}, {onnx['nodes']} nodes; in {ins}; out {outs}")
    ver = info.get("verification")
    if ver:
        lines.append(f"  verified  {ver.get('backend')}: {'passed' if ver.get('passed') else 'not passed'}")
    fp16 = info.get("fp16")
    if fp16:
        lines.append(f"  fp16      {fp16.get('converter')}, I/O {'fp32' if fp16.get('keep_io_types') else 'fp16'}, "
                     f"{len(fp16.get('kept_fp32') or [])} node(s) kept FP32")
    engines = [info["engine"]] if info.get("engine") else info.get("engines") or []
    for e in engines:
        prof = "; ".join(f"{_dims(p['min'])} / {_dims(p['opt'])} / {_dims(p['max'])}"
                         for pr in e.get("profiles", []) for p in pr.values())
        lines.append(f"  engine    {e['path']} {e.get('precision')} ({e.get('flavour')} {e.get('version')}), "
                     f"profile min/opt/max {prof}")
    layers = info.get("layers")
    if layers and not layers.get("available"):
        lines.append(f"  layers    not shown: {layers.get('reason')}")
    for a in info.get("artifacts") or []:
        size = f"{a['bytes']:,} bytes" if a.get("bytes") is not None else "size unknown"
        lines.append(f"  artifact  {a['path']}  {a['status']}  {size}  sha256 {a.get('sha256')}")
    return lines


@click.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the facts and problems as JSON on stdout.")
@handle_errors
def inspect_cmd(path, as_json):
    """What unetrt knows about an exported .onnx, .engine/.plan or export directory.

    Checks what it can (ONNX parses and passes the checker; sha256 and size of every file the
    manifest lists) and exits 1 when anything is wrong.
    """
    from ..artifacts.inspection import describe

    info = describe(path)
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        con = make_console(stderr=False)
        for line in _lines(info):
            con.print(line, markup=False, highlight=False, soft_wrap=True)
        for problem in info["problems"]:
            con.print(f"  PROBLEM   {problem}", style="red", markup=False, highlight=False, soft_wrap=True)
    if info["problems"]:
        first = info["problems"][0]
        more = f" (+{len(info['problems']) - 1} more)" if len(info["problems"]) > 1 else ""
        raise UnetrtError(f"{path}: {first}{more}", "an intact artifact",
                          "re-export it (unet-export ... -o DIR --force)")
