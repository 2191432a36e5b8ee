"""Print the field-by-field manifest reference of docs/manifest.md, generated from the shipped JSON Schema.

    python scripts/manifest_docs.py            # markdown on stdout
The test suite checks that docs/manifest.md contains exactly this text (between its
manifest-reference markers).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unetrt.artifacts.manifest import SCHEMA_FILE  # noqa: E402


def _type(prop: dict) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " \\| ".join(_type(p) for p in prop["anyOf"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "enum" in prop:
        return " \\| ".join(json.dumps(v) for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type(prop.get('items', {}))}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"object of {_type(prop['additionalProperties'])}"
    return kind


def _table(title: str, node: dict) -> list[str]:
    lines = [f"**{title}** — {node.get('description', '')}", "", "| field | type | meaning |", "|---|---|---|"]
    for name, prop in node.get("properties", {}).items():
        text = prop.get("description", "").replace("|", "\\|").replace("``", "`")
        lines.append(f"| `{name}` | {_type(prop)} | {text} |")
    return lines + [""]


def markdown() -> str:
    """The manifest reference as markdown."""
    schema = json.loads(SCHEMA_FILE.read_text())
    out = _table("manifest.json", schema)
    for name in ("ModelSection", "CheckpointRef", "InputSection", "DynamicAxes", "OutputSection", "ExportInfo",
                 "OnnxArtifact", "Verification", "Fp16Section", "EngineEntry", "ArtifactFile", "SizeExample"):
        if name in schema["$defs"]:
            out += _table(name, schema["$defs"][name])
    for name in sorted(set(schema["$defs"]) - {"ModelSection", "CheckpointRef", "InputSection", "DynamicAxes",
                                                "OutputSection", "ExportInfo", "OnnxArtifact", "Verification",
                                                "Fp16Section", "EngineEntry", "ArtifactFile", "SizeExample"}):
        out += _table(name, schema["$defs"][name])
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
