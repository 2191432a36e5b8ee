"""``unetrt inspect``: what the manifest (and the file itself) says about an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UnetrtError
from .manifest import Manifest
from .names import MANIFEST as MANIFEST_NAME
from ..fileio import sha256_file


def _onnx_facts(path: Path) -> dict[str, Any]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    def dtype(vi):
        return onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name

    return {"opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
            "nodes": len(model.graph.node),
            "inputs": [{"name": i.name, "dtype": dtype(i), "shape": dims(i)} for i in model.graph.input],
            "outputs": [{"name": o.name, "dtype": dtype(o), "shape": dims(o)} for o in model.graph.output],
            "metadata_keys": sorted(p.key for p in model.metadata_props if p.key.startswith("unetrt."))}


def _engine_layers(path: Path, entry: dict | None = None) -> dict[str, Any]:
    """Layer information from TensorRT's engine inspector; needs a GPU to deserialise."""
    from .trt import inspect_engine

    return inspect_engine(path, entry)


def describe(path: str | Path) -> dict[str, Any]:
    """Facts about an ONNX file, an engine, or an export directory."""
    p = Path(path)
    if not p.exists():
        raise UnetrtError(f"{path} does not exist", "an exported .onnx, .engine or export directory",
                          "check the path")
    directory = p if p.is_dir() else p.parent
    manifest = None
    if (directory / MANIFEST_NAME).exists():
        manifest = Manifest.read(directory).to_dict()  # ManifestError names a bad field
    out: dict[str, Any] = {"path": str(p), "manifest": str(directory / MANIFEST_NAME) if manifest else None}
    if manifest:
        out.update({k: manifest.get(k) for k in ("model", "input", "output", "mask_values")})
    if p.is_dir():
        out["artifacts"] = manifest.get("artifacts", []) if manifest else sorted(x.name for x in p.iterdir())
        return out
    digest = sha256_file(p)
    out["sha256"] = digest
    if manifest:
        listed = {a["path"]: a for a in manifest.get("artifacts", [])}
        entry = listed.get(p.name)
        out["manifest_match"] = bool(entry and entry["sha256"] == digest)
    if p.suffix == ".onnx":
        try:
            out["onnx"] = _onnx_facts(p)
        except Exception as exc:  # protobuf's DecodeError and friends: report, don't crash
            out["onnx"] = {"error": f"not a readable ONNX file ({type(exc).__name__}: {exc})"}
        if manifest and p.name == manifest.get("onnx", {}).get("path"):
            out["verification"] = {k: manifest["verification"].get(k) for k in ("backend", "passed", "tolerance")}
        elif manifest and manifest.get("fp16") and p.name == manifest["fp16"].get("path"):
            out["fp16"] = {k: manifest["fp16"].get(k) for k in ("converter", "keep_io_types", "kept_fp32")}
    else:
        eng = next((e for e in (manifest or {}).get("engines", []) if e["path"] == p.name), None)
        out["engine"] = eng
        out["layers"] = _engine_layers(p, eng)
    return out
