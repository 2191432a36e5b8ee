"""Alignment / minimum-size derivation from torch.export's shape guards."""

import pytest

from tests.fixtures.thirdparty import branchy
from unetrt.errors import AlignmentError
from unetrt.exporter.trace import parse_constraint_violation, sample_shape, trace
from unetrt.models import create_model

# Verbatim shape of torch 2.13's message for a decoder that pads only `if` shapes differ.
BRANCHY_MESSAGE = """Constraints violated (H, W)! For more information, run with TORCH_LOGS="+dynamic".
  - Not all values of H = L['x'].size()[2] in the specified range H <= 8192 satisfy the generated guard (2*(L['x'].size()[2] // 16)) == (L['x'].size()[2] // 8).
  - Not all values of H = L['x'].size()[2] in the specified range H <= 8192 satisfy the generated guard 16 <= L['x'].size()[2] and L['x'].size()[2] <= 8192
Suggested fixes:
  W = Dim('W', min=16, max=8192)
  _H = Dim('_H', max=512)
  H = 16*_H - 13
"""


def test_parse_suggested_fixes():
    fixes = parse_constraint_violation(BRANCHY_MESSAGE, align=1)
    assert fixes.modulus == 16
    assert fixes.min_size == 16
    assert fixes.guards[0] == "(2*(H // 16)) == (H // 8)"


def test_parse_root_dims_are_in_units_of_the_current_alignment():
    msg = "Constraints violated\nSuggested fixes:\n  _H = Dim('_H', min=3, max=64)\n  _W = 2*__W\n"
    fixes = parse_constraint_violation(msg, align=8)
    assert fixes.modulus == 16  # 2 * 8
    assert fixes.min_size == 24  # 3 * 8


@pytest.mark.parametrize("align,min_size", [(1, 16), (16, 16), (1, 188)])
def test_sample_avoids_specialisation(align, min_size):
    n, c, h, w = sample_shape(3, align, min_size)
    assert n == 2 and c == 3 and h != w
    assert h >= max(min_size, 64) and w >= max(min_size, 64)
    assert h % align == 0 and w % align == 0


@pytest.mark.slow
def test_milesial_is_fully_dynamic_with_min_16():
    t = trace(create_model("milesial", width=4), 3)
    assert (t.alignment, t.min_size) == (1, 16)
    assert t.notes == ["minimum input size 16 (from shape guards)"]
    assert trace(create_model("milesial", width=4), 3, spec_min_size=16).notes == []


def test_branchy_model_gets_derived_alignment():
    t = trace(branchy(width=2), 3)
    assert t.alignment == 16
    assert any("multiples of 16" in n for n in t.notes)
    assert t.sample_shape[2] % 16 == 0 and t.sample_shape[3] % 16 == 0


def test_branchy_model_with_align_1_fails_with_diagnosis():
    with pytest.raises(AlignmentError) as err:
        trace(branchy(width=2), 3, align=1)
    msg = str(err.value)
    assert "cannot be exact at every size" in msg and "--align 16" in msg and "H // 16" in msg
    assert "\n" not in msg


# Shape of torch 2.13's message for a volume whose depth must be a multiple of 4 (root in units of 2).
VOLUME_MESSAGE = """Constraints violated (_D)! For more information, run with TORCH_LOGS="+dynamic".
  - Not all values of 2*_D = L['x'].size()[2] in the specified range satisfy the generated guard Eq(Mod(L['x'].size()[2], 4), 0).
Suggested fixes:
  _D = 2*__D
  _H = Dim('_H', min=3, max=64)

The error above occurred when calling torch.export.export.
"""


def test_parse_fixes_of_a_volume_uses_depth_and_ignores_trailing_prose():
    fixes = parse_constraint_violation(VOLUME_MESSAGE, align=2, spatial_dims=3)
    assert fixes.modulus == 4 and fixes.min_size == 6
    assert fixes.guards == ["Eq(Mod(D, 4), 0)"]


def test_static_fix_is_reported():
    fixes = parse_constraint_violation("Constraints violated\nSuggested fixes:\n  H = 64\n", align=1)
    assert fixes.static == {"H": 64}


def test_3d_sample_is_small_and_distinct():
    assert sample_shape(1, 1, 1, spatial_dims=3) == (2, 1, 35, 37, 41)
    assert sample_shape(1, 8, 8, spatial_dims=3) == (2, 1, 16, 24, 32)


@pytest.mark.parametrize("align,spec,probed,start,final,expected", [
    (8, False, False, 8, 8, "forced"), (None, True, False, 16, 16, "spec"), (None, False, True, 8, 8, "probed"),
    (None, False, True, 8, 16, "guards"), (None, False, False, 1, 16, "guards"), (None, False, False, 1, 1, "guards")])
def test_alignment_source(align, spec, probed, start, final, expected):
    from types import SimpleNamespace

    from unetrt.exporter.pipeline import ExportConfig, _alignment_source

    zoo = SimpleNamespace(alignment=16, min_size=16) if spec else None
    found = SimpleNamespace(probed=probed) if probed else None
    assert _alignment_source(ExportConfig(align=align), zoo, found, start, final) == expected
