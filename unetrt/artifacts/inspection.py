"""``unetrt inspect``: what the manifest (and the file itself) says about an artifact, and what is wrong.

:func:`describe` never raises for a damaged artifact: it returns the facts it could read plus a list
of ``problems`` (unreadable or truncated ONNX, a file that is no artifact, a sha256 or size that does
not match the manifest, a listed file that is missing). The CLI exits non-zero when that list is
not empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ArtifactError, UnetrtError
from .manifest import Manifest
from .names import MANIFEST as MANIFEST_NAME
from .trt import plan_problem
from ..fileio import sha256_file

#: File types inspect knows, by suffix.
KINDS = {".onnx": "onnx", ".engine": "engine", ".plan": "engine"}


def _onnx_facts(path: Path) -> dict[str, Any]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(model)

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    def dtype(vi):
        return onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name

    if not model.graph.node or not model.graph.input or not model.graph.output:
        raise ArtifactError(f"{path.name}: the graph has no nodes, inputs or outputs", "an exported UNet graph",
                            "re-export it")
    return {"opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
            "nodes": len(model.graph.node),
            "inputs": [{"name": i.name, "dtype": dtype(i), "shape": dims(i)} for i in model.graph.input],
            "outputs": [{"name": o.name, "dtype": dtype(o), "shape": dims(o)} for o in model.graph.output],
            "metadata_keys": sorted(p.key for p in model.metadata_props if p.key.startswith("unetrt."))}


def _engine_layers(path: Path, entry: dict | None = None) -> dict[str, Any]:
    """Layer information from TensorRT's engine inspector; needs a GPU to deserialise."""
    from .trt import inspect_engine

    return inspect_engine(path, entry)


def _check_artifacts(directory: Path, manifest: dict, problems: list[str]) -> list[dict[str, Any]]:
    """Every file the manifest lists: present, of the recorded size and sha256."""
    rows = []
    for entry in manifest.get("artifacts") or []:
        name = entry.get("path", "")
        f = directory / name
        row = {"path": name, "bytes": entry.get("bytes"), "sha256": entry.get("sha256"), "status": "ok"}
        if not f.is_file():
            row["status"] = "missing"
        elif entry.get("bytes") is not None and f.stat().st_size != entry["bytes"]:
            row["status"] = f"size {f.stat().st_size} != {entry['bytes']} recorded"
        elif entry.get("sha256") and sha256_file(f) != entry["sha256"]:
            row["status"] = "sha256 does not match the manifest"
        if row["status"] != "ok":
            problems.append(f"{name}: {row['status']}")
        rows.append(row)
    if not rows:
        problems.append(f"{directory / MANIFEST_NAME} lists no artifacts")
    return rows


def _read(directory: Path, problems: list[str]) -> dict | None:
    """The manifest beside the artifact as a dict (``None`` when absent; a bad one is a problem)."""
    from ..errors import ManifestError

    if not (directory / MANIFEST_NAME).is_file():
        return None
    try:
        return Manifest.read(directory).to_dict()
    except ManifestError as exc:  # names the bad field
        problems.append(str(exc))
        return None


def _describe_file(p: Path, manifest: dict | None, out: dict[str, Any], problems: list[str]) -> None:
    kind = KINDS.get(p.suffix.lower())
    out["kind"] = kind
    out["bytes"] = p.stat().st_size
    out["sha256"] = digest = sha256_file(p)
    if kind is None:
        problems.append(f"{p.name} is not an artifact unetrt inspects (.onnx, .engine/.plan or an export directory)")
        return
    if manifest:
        listed = {a.get("path"): a for a in manifest.get("artifacts") or []}
        entry = listed.get(p.name)
        if entry is None:
            problems.append(f"{p.name} is not listed in the manifest beside it")
        elif not (out.setdefault("manifest_match", entry.get("sha256") == digest)):
            problems.append(f"{p.name}: sha256 does not match the manifest (the file changed since export)")
    if kind == "onnx":
        try:
            out["onnx"] = _onnx_facts(p)
        except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError and friends: report
            problems.append(f"{p.name} is not a readable ONNX model ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})")
        if manifest and p.name == (manifest.get("onnx") or {}).get("path"):
            out["verification"] = {k: (manifest.get("verification") or {}).get(k)
                                   for k in ("backend", "passed", "tolerance")}
        elif manifest and manifest.get("fp16") and p.name == manifest["fp16"].get("path"):
            out["fp16"] = {k: manifest["fp16"].get(k) for k in ("converter", "keep_io_types", "kept_fp32")}
        return
    out["engine"] = next((e for e in (manifest or {}).get("engines", []) if e.get("path") == p.name), None)
    broken = f"{p.name} is empty" if out["bytes"] == 0 else plan_problem(p)
    if broken is not None:  # not handed to TensorRT: a garbage or truncated plan is reported from its header
        problems.append(broken)
        out["layers"] = {"available": False, "reason": "not a whole plan"}
        return
    out["layers"] = _engine_layers(p, out["engine"])


def describe(path: str | Path) -> dict[str, Any]:
    """Facts about an ONNX file, an engine, or an export directory, and the problems found.

    Returns:
        A JSON-able dict; ``problems`` lists what is wrong (empty when all is well), ``ok`` says so.

    Raises:
        UnetrtError: the path does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise UnetrtError(f"{path} does not exist", "an exported .onnx, .engine or export directory",
                          "check the path")
    problems: list[str] = []
    directory = p if p.is_dir() else p.parent
    manifest = _read(directory, problems)
    out: dict[str, Any] = {"path": str(p), "manifest": str(directory / MANIFEST_NAME) if manifest else None}
    if manifest:
        out.update({k: manifest.get(k) for k in ("model", "input", "output", "mask_values")})
    if p.is_dir():
        out["kind"] = "export directory"
        if manifest is not None:
            out["artifacts"] = _check_artifacts(p, manifest, problems)
            out["engines"] = manifest.get("engines", [])
        elif not problems:
            problems.append(f"{p} has no {MANIFEST_NAME}: not an export directory")
    else:
        _describe_file(p, manifest, out, problems)
    out["problems"] = problems
    out["ok"] = not problems
    return out
