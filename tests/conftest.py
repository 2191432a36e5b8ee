import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `--model tests.fixtures.thirdparty:...` must import in-process
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "2")


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # not item.keywords: it holds folder names too
            item.add_marker(_registry_skip(item) or skip)


def _registry_skip(item):
    """A gpu test of one registered backend (``@pytest.mark.backend(name)``) skips with the registry's reason."""
    marker = item.get_closest_marker("backend")
    if marker is None:
        return None
    from unetrt.runtime import backends as registry

    name = marker.args[0]
    reason = registry.get(name).reason_unavailable(cuda=False)
    return pytest.mark.skip(reason=f"{name}: {reason}") if reason else None


@pytest.fixture(autouse=True, scope="session")
def _manifests_match_the_shipped_schema():
    """Every manifest the suite writes in-process is checked against the shipped JSON Schema."""
    import json

    import jsonschema

    from unetrt.artifacts import manifest as manifest_mod

    validator = jsonschema.Draft202012Validator(json.loads(manifest_mod.SCHEMA_FILE.read_text()))
    original = manifest_mod.Manifest.write
    written: list[str] = []

    def checked_write(self, path):
        target = original(self, path)
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(json.loads(target.read_text()))]
        assert not errors, f"{target} does not match manifest.schema.json: {errors[:3]}"
        written.append(str(target))
        return target

    manifest_mod.Manifest.write = checked_write
    yield written
    manifest_mod.Manifest.write = original
