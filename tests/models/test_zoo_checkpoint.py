"""Checkpoint formats, refusals and mismatch diagnostics."""

from __future__ import annotations

import io

import pytest
import torch

from unetrt.errors import CheckpointError, UnetrtError
from unetrt.models import apply_checkpoint, create_model, load_checkpoint, load_state_dict_into


@pytest.fixture(scope="module")
def milesial_state():
    torch.manual_seed(0)
    return create_model("milesial", width=4).state_dict()


def _save(obj, path):
    torch.save(obj, path)
    return path


def _same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("mask_values", [[0, 1], [[0, 0, 0], [255, 255, 255]]])
def test_milesial_checkpoint_mask_values_become_metadata(tmp_path, milesial_state, mask_values):
    path = _save({**milesial_state, "mask_values": mask_values}, tmp_path / "checkpoint_epoch5.pth")
    state, meta = load_checkpoint(path)
    assert meta["mask_values"] == mask_values and meta["format"] == "milesial"
    assert "mask_values" not in state and _same(state, milesial_state)
    model = create_model("milesial", width=4)
    assert load_state_dict_into(model, str(path))["mask_values"] == mask_values
    assert _same(model.state_dict(), milesial_state)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_wrapper_prefixes_are_stripped(tmp_path, milesial_state, prefix):
    path = _save({prefix + k: v for k, v in milesial_state.items()}, tmp_path / "dp.pt")
    state, meta = load_checkpoint(path)
    assert _same(state, milesial_state)
    assert "".join(meta["stripped_prefixes"]) == prefix


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_nested_weights_are_unwrapped(tmp_path, milesial_state, key):
    blob = {key: milesial_state, "epoch": 7, "optimizer": {"lr": 1e-3}, "best_dice": 0.91}
    state, meta = load_checkpoint(_save(blob, tmp_path / "train.ckpt"))
    assert _same(state, milesial_state)
    assert meta["format"] == f"nested:{key}"
    assert meta["extra_keys"] == ["best_dice", "epoch", "optimizer"]


def test_nested_and_prefixed_together(tmp_path, milesial_state):
    blob = {"state_dict": {"module." + k: v for k, v in milesial_state.items()}, "epoch": 1}
    state, _ = load_checkpoint(_save(blob, tmp_path / "both.pt"))
    assert _same(state, milesial_state)


def test_file_object_is_accepted(milesial_state):
    buf = io.BytesIO()
    torch.save(milesial_state, buf)
    buf.seek(0)
    state, meta = load_checkpoint(buf)
    assert _same(state, milesial_state) and meta["extra_keys"] == []


def test_pickled_model_is_refused_with_state_dict_hint(tmp_path):
    path = _save(create_model("milesial", width=4), tmp_path / "whole_model.pth")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "pickled object" in msg and "MilesialUNet" in msg
    assert "torch.save(model.state_dict(), path)" in msg
    assert "\n" not in msg and msg.count(" | ") == 2



def test_pickled_model_in_a_file_object_names_its_classes_users_first():
    import io

    buf = io.BytesIO()
    torch.save(create_model("milesial", width=4), buf)
    buf.seek(0)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(buf)
    shown = str(info.value).split("pickled object (", 1)[1].split(")", 1)[0]
    assert shown.startswith("unetrt.models.milesial.") and "MilesialUNet" in shown and "more" in shown


@pytest.mark.parametrize("content", [b"this is not a checkpoint", b"", b"PK\x03\x04broken zip"])
def test_corrupt_file_is_reported(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="is not a readable torch file") as info:
        load_checkpoint(path)
    assert "bad.pth" in str(info.value) and "\n" not in str(info.value)


def test_truncated_file_is_reported(tmp_path, milesial_state):
    good = _save(milesial_state, tmp_path / "good.pth").read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


def test_no_tensors(tmp_path):
    with pytest.raises(CheckpointError, match="contains no tensors") as info:
        load_checkpoint(_save({"epoch": 3, "lr": 0.1}, tmp_path / "meta_only.pt"))
    assert "epoch" in str(info.value)
    assert isinstance(info.value, UnetrtError)


def test_missing_batchnorm_counters_are_tolerated(milesial_state):
    old = {k: v for k, v in milesial_state.items() if not k.endswith("num_batches_tracked")}
    model = create_model("milesial", width=4)
    apply_checkpoint(model, old)
    assert torch.equal(model.inc.double_conv[1].running_var, milesial_state["inc.double_conv.1.running_var"])


def test_prelu_weights_into_milesial_names_prelu():
    state = create_model("prelu", width=8).state_dict()
    model = create_model("milesial", width=8)
    with pytest.raises(CheckpointError) as info:
        apply_checkpoint(model, state)
    msg = str(info.value)
    n_missing = sum(1 for k in model.state_dict() if not k.endswith("num_batches_tracked"))
    assert f"{n_missing} missing key(s) [inc.double_conv.0.weight" in msg
    assert f"{len(state)} unexpected key(s) [encode_layer1.0.weight" in msg
    assert "zoo variant 'prelu'" in msg and "create_model('prelu', width=8)" in msg
    assert "\n" not in msg


def test_width_mismatch_lists_shapes_and_suggests_width():
    state = create_model("milesial", width=16).state_dict()
    with pytest.raises(CheckpointError) as info:
        apply_checkpoint(create_model("milesial", width=8), state)
    msg = str(info.value)
    first = "inc.double_conv.0.weight: checkpoint (16, 3, 3, 3) vs model (8, 3, 3, 3)"
    assert f"mis-shaped key(s) [{first}" in msg
    assert "missing" not in msg and "unexpected" not in msg
    assert "create_model('milesial', width=16)" in msg


def test_bilinear_checkpoint_suggests_bilinear_and_classes():
    state = create_model("milesial", width=4, bilinear=True, num_classes=5).state_dict()
    with pytest.raises(CheckpointError) as info:
        apply_checkpoint(create_model("milesial", width=4), state)
    msg = str(info.value)
    assert "8 missing key(s) [up1.up.weight" in msg
    assert "create_model('milesial', bilinear=True, num_classes=5, width=4)" in msg


def test_foreign_weights_get_no_false_match():
    model = create_model("paper", width=4)
    with pytest.raises(CheckpointError) as info:
        apply_checkpoint(model, {"backbone.stem.weight": torch.zeros(4, 3, 3, 3)})
    msg = str(info.value)
    assert "1 unexpected key(s) [backbone.stem.weight]" in msg
    assert "no zoo variant matches" in msg and "pkg.module:factory" in msg
    assert "checkpoint does not fit model 'paper'" in msg


def test_mismatch_leaves_model_unchanged(milesial_state):
    model = create_model("milesial", width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    broken = dict(milesial_state)
    broken["outc.conv.weight"] = torch.zeros(7, 4, 1, 1)
    with pytest.raises(CheckpointError, match=r"1 mis-shaped key\(s\) \[outc.conv.weight"):
        apply_checkpoint(model, broken)
    assert _same(model.state_dict(), before)
