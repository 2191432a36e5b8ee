"""The manifest contract: typed round trip, one clear error per missing or ill-typed field, schema versions,
the shipped JSON Schema, and every reader (load, inspect, predict) agreeing on a bad manifest."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from unetrt.artifacts.manifest import SCHEMA_FILE, SCHEMA_VERSION, Manifest, json_schema
from unetrt.artifacts.refs import ArtifactRef
from unetrt.cli import main
from unetrt.errors import ManifestError
from unetrt.runtime import load


def _raw(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def _required_paths(schema: dict, node: dict, data, prefix: tuple = ()) -> list[tuple]:
    """Every required field (as a key path) of ``data`` that the schema marks required, recursively."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in node:
        node = next((n for n in node["anyOf"] if n.get("type") != "null"), node)
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    paths = []
    if isinstance(data, dict) and node.get("type") == "object" and "properties" in node:
        for key in node.get("required", []):
            paths.append(prefix + (key,))
            if key in data and data[key] is not None:
                paths += _required_paths(schema, node["properties"][key], data[key], prefix + (key,))
    return paths


def test_round_trip_write_read_equal(contract_export, tmp_path):
    manifest = Manifest.read(contract_export)
    assert manifest.schema_version == SCHEMA_VERSION and manifest.model.weights == "checkpoint"
    assert manifest.input.alignment == 16 and manifest.input.layout == "NCHW" and manifest.output.classes == 3
    again = Manifest.from_dict(manifest.to_dict())
    assert again == manifest
    written = manifest.write(tmp_path)
    assert written == tmp_path / "manifest.json" and Manifest.read(tmp_path) == manifest
    assert json.loads(written.read_text()) == _raw(contract_export)  # byte-level JSON form is what was exported


def test_queries(contract_export):
    manifest = Manifest.read(contract_export)
    onnx = contract_export / "model.onnx"
    assert manifest.entry(ArtifactRef("onnx")) is manifest.onnx and manifest.entry(ArtifactRef("onnx", "fp16")) is None
    assert [e.ref for e in manifest.artifact_entries()] == [ArtifactRef("onnx")]
    assert manifest.sha256_of("model.onnx") == manifest.onnx.sha256
    assert manifest.sha256_of("nope.onnx") is None
    assert {a.path for a in manifest.artifacts} == {"model.onnx"} and onnx.is_file()
    assert manifest.model.source().arch == "milesial" and manifest.model.source().kwargs["width"] == 2


def test_every_required_field_removed_in_turn_names_itself(contract_export):
    data = _raw(contract_export)
    schema = json_schema()
    paths = _required_paths(schema, schema, data)
    assert len(paths) > 40  # the whole tree, not just the top level
    messages = set()
    for path in paths:
        broken = copy.deepcopy(data)
        parent = broken
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        if path == ("format",):
            with pytest.raises(ManifestError, match="not a unetrt manifest"):
                Manifest.from_dict(broken)
            continue
        if path == ("schema_version",):
            with pytest.raises(ManifestError, match="schema_version"):
                Manifest.from_dict(broken)
            continue
        with pytest.raises(ManifestError) as info:
            Manifest.from_dict(broken)
        dotted = ".".join(path)
        assert f"required field {dotted} is missing" in str(info.value), (dotted, str(info.value))
        assert "\n" not in str(info.value)
        messages.add(str(info.value))
    assert len(messages) == len(paths) - 2  # each message is its own


@pytest.mark.parametrize("path, value, needle", [
    (("input", "alignment"), "sixteen", "field input.alignment is \"sixteen\""),
    (("input", "alignment"), 0, "field input.alignment is 0"),
    (("input", "layout"), "NHWC", "field input.layout"),
    (("model", "weights"), "maybe", "field model.weights"),
    (("onnx", "sha256"), "abc", "field onnx.sha256"),
    (("output", "geometry"), 3, "field output.geometry"),
    (("engines",), {"path": "x"}, "field engines"),
    (("input", "colour"), "red", "unknown field input.colour"),
    # strict JSON types, as the shipped schema says (what C++ readers rely on): no coercion
    (("input", "alignment"), "16", "field input.alignment is \"16\""),
    (("input", "pad_to_alignment"), "yes", "field input.pad_to_alignment is \"yes\""),
    (("model", "params"), 1.5, "field model.params is 1.5"),
])
def test_wrongly_typed_field_is_named(contract_export, path, value, needle):
    data = _raw(contract_export)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(ManifestError, match="re-export") as info:
        Manifest.from_dict(data)
    assert needle in str(info.value)


def test_partial_dicts_from_code_get_defaults_files_do_not(contract_export):
    data = _raw(contract_export)
    del data["output"]["names"]
    assert Manifest.with_defaults(data).output.names == []  # code assembling a manifest
    with pytest.raises(ManifestError, match=r"required field output.names is missing \|"):
        Manifest.from_dict(data)  # a file must have it


def test_schema_versions(contract_export):
    data = _raw(contract_export)
    with pytest.raises(ManifestError, match=r"schema_version 4, newer than this unetrt reads \(3\).*upgrade unetrt"):
        Manifest.from_dict({**data, "schema_version": 4})
    with pytest.raises(ManifestError, match="unknown schema_version 0"):
        Manifest.from_dict({**data, "schema_version": 0})
    with pytest.raises(ManifestError, match="schema_version is 'two'"):
        Manifest.from_dict({**data, "schema_version": "two"})
    with pytest.raises(ManifestError, match="not a unetrt manifest"):
        Manifest.from_dict([1, 2])


def test_version_2_manifests_without_the_newer_fields_are_upgraded(contract_export):
    """A schema_version 2 file (before typed parity rows, the labels form and nnU-Net) reads with defaults;
    the same file claiming version 3 is refused for the first missing field."""
    data = _raw(contract_export)
    old = copy.deepcopy(data)
    old["schema_version"] = 2
    for row in old["verification"]["sizes"]:
        del row["outputs"]
        del row["reason"]
    del old["onnx"]["labels"]
    del old["nnunet"]
    manifest = Manifest.from_dict(old)
    assert manifest.schema_version == 3 and manifest.onnx.labels is None and manifest.nnunet is None
    assert manifest.to_dict() == data
    with pytest.raises(ManifestError, match="required field .*(outputs|reason|labels|nnunet) is missing"):
        Manifest.from_dict({**old, "schema_version": 3})
    old["verification"]["sizes"][0]["max_abs"] = "0.1"  # still strict about types
    with pytest.raises(ManifestError, match="max_abs"):
        Manifest.from_dict(old)


def test_version_1_manifests_are_upgraded(contract_export):
    """unetrt 0.1 wrote ``"version": 1`` with mask_values inside ``model`` and no ``weights``."""
    data = _raw(contract_export)
    old = copy.deepcopy(data)
    del old["schema_version"]
    old["version"] = 1
    del old["model"]["weights"]
    old["model"]["mask_values"] = old["mask_values"]
    manifest = Manifest.from_dict(old)
    assert manifest.schema_version == 3 and manifest.model.weights == "checkpoint"
    assert manifest.to_dict() == data
    old["model"]["checkpoint"] = None
    assert Manifest.from_dict(old).model.weights == "random-init"


def test_shipped_schema_is_current_and_validates(contract_export):
    shipped = json.loads(SCHEMA_FILE.read_text())
    assert shipped == json.loads(json.dumps(json_schema())), "regenerate: python -m unetrt.artifacts.manifest"
    jsonschema.Draft202012Validator.check_schema(shipped)
    validator = jsonschema.Draft202012Validator(shipped)
    data = _raw(contract_export)
    assert list(validator.iter_errors(data)) == []
    bad = copy.deepcopy(data)
    bad["input"]["alignment"] = "x"
    assert [e.json_path for e in validator.iter_errors(bad)] == ["$.input.alignment"]
    described = shipped["$defs"]["InputSection"]["properties"]["alignment"]["description"]
    assert "multiple" in described  # fields carry their docs for C++/Triton readers


def test_readers_agree_on_a_bad_manifest(contract_export, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(contract_export, export)
    data = _raw(export)
    del data["input"]["channels"]
    (export / "manifest.json").write_text(json.dumps(data))
    needle = "required field input.channels is missing"
    with pytest.raises(ManifestError, match=needle):
        load(export)
    with pytest.raises(ManifestError, match=needle):
        load(export / "model.onnx")
    runner = CliRunner()
    for args in (["inspect", str(export)], ["predict", "-m", str(export), "-i", str(tmp_path / "x.png"),
                                             "-o", str(tmp_path / "y.png")]):
        if args[0] == "predict":
            from PIL import Image

            Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
        result = runner.invoke(main, args)
        assert result.exit_code != 0, result.output
        assert needle in result.output and "Traceback" not in result.output


def test_docs_reference_matches_the_schema():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "manifest.md").read_text()
    block = page.split("<!-- manifest-reference:start -->\n", 1)[1].split("<!-- manifest-reference:end -->", 1)[0]
    generated = subprocess.run([sys.executable, str(root / "scripts" / "manifest_docs.py")], capture_output=True,
                               text=True, check=True).stdout
    assert block == generated, "docs/manifest.md's reference is stale: paste `python scripts/manifest_docs.py`"
    for field in ("alignment", "min_size", "schema_version", "weights", "profiles"):
        assert f"| `{field}` |" in block


@pytest.mark.parametrize("where, value", [
    ("onnx", "/etc/passwd"), ("onnx", "../model.onnx"), ("engine", "../secret"), ("engine", "plans/../../x"),
    ("artifact", "C:\\\\model.onnx"),
])
def test_artifact_paths_must_stay_inside_the_export(contract_export, where, value):
    from unetrt.artifacts.manifest import EngineEntry

    data = _raw(contract_export)
    if where == "onnx":
        data["onnx"]["path"], field_name = value, "onnx.path"
    elif where == "engine":
        entry = Manifest.with_defaults({**data, "engines": [EngineEntry(path="model.engine", sha256="1" * 64)]})
        data["engines"] = entry.to_dict()["engines"]
        data["engines"][0]["path"], field_name = value, "engines.0.path"
    else:
        data["artifacts"][0]["path"], field_name = value, "artifacts.0.path"
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(data)
    message = str(info.value)
    assert f"field {field_name} is {json.dumps(value)} (an artifact path must stay inside the export directory " \
           f"(relative, no '..'))" in message and "\n" not in message
    data_ok = _raw(contract_export)
    data_ok["onnx"]["path"] = "sub/model.onnx"  # a subdirectory of the export is inside it
    assert Manifest.from_dict(data_ok).onnx.path == "sub/model.onnx"
