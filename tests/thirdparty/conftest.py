import pytest

pytest.importorskip("monai", reason="MONAI is a dev dependency (pip install -e '.[dev]')")
