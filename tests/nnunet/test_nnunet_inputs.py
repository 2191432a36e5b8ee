"""Bad nnU-Net input (one line naming what is wrong, nothing written) and the building blocks of the
predictor checked against nnunetv2's own functions (normalization schemes, sliding-window steps, Gaussian)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("dynamic_network_architectures", reason="the nnunet extra builds the plan's networks")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A tiny results folder (2 folds, 3d_fullres) written in nnU-Net's format."""
    from unetrt.nnunet.synthetic import SyntheticCase, write_results_folder

    case = SyntheticCase(patch_size=[8, 16, 16], features=[2, 4], folds=(0, 1))
    return write_results_folder(tmp_path_factory.mktemp("nnunet_inputs") / "results", case)


@pytest.fixture
def copy(results, tmp_path):
    target = tmp_path / "results"
    shutil.copytree(results, target)
    return target


def _edit_plans(folder, edit):
    plans = json.loads((folder / "plans.json").read_text())
    edit(plans)
    (folder / "plans.json").write_text(json.dumps(plans))


def _cli_export(folder, out, *extra):
    from unetrt.cli.export import export_cmd

    res = CliRunner().invoke(export_cmd, ["--nnunet", str(folder), "-o", str(out), "--no-engine", *extra])
    assert res.exit_code != 0, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert "Traceback" not in res.output
    assert not out.exists()
    return " ".join(lines[0].split())


def test_reads_a_results_folder(results):
    from unetrt.nnunet.results import read_results

    r = read_results(results)
    assert r.configuration == "3d_fullres" and [f.fold for f in r.folds] == [0, 1]
    assert r.input_channels == 1 and r.num_outputs == 3 and r.folds[0].mirror_axes == [0, 1, 2]
    assert r.folds[0].trainer == "nnUNetTrainer" and "encoder.stages.0.0.convs.0.conv.weight" in r.folds[0].state_dict


@pytest.mark.parametrize("missing", ["plans.json", "dataset.json", "dataset_fingerprint.json"])
def test_missing_json(copy, tmp_path, missing):
    (copy / missing).unlink()
    line = _cli_export(copy, tmp_path / "out")
    assert f"has no {missing}" in line and "nnUNet_results" in line


def test_missing_fold_checkpoint(copy, tmp_path):
    (copy / "fold_1" / "checkpoint_final.pth").unlink()
    line = _cli_export(copy, tmp_path / "out", "--folds", "0,1")
    assert "nnU-Net fold 1 has no checkpoint" in line and "checkpoint_final.pth" in line


def test_other_checkpoint_name(copy, tmp_path):
    line = _cli_export(copy, tmp_path / "out", "--checkpoint", "checkpoint_best.pth")
    assert "has no fold_<k>/checkpoint_best.pth" in line


def test_unknown_trainer(tmp_path):
    from unetrt.nnunet.synthetic import SyntheticCase, write_results_folder

    folder = write_results_folder(tmp_path / "results", SyntheticCase(patch_size=[8, 16, 16], features=[2, 4],
                                                                     folds=(0,), trainer="MyLabTrainer"))
    line = _cli_export(folder, tmp_path / "out")
    assert "'MyLabTrainer', an unknown trainer class" in line


@pytest.mark.parametrize("cls, says", [
    ("dynamic_network_architectures.architectures.unet.NoSuchUNet", "which does not import"),
    ("mylab.networks.MyUNet", "a class under dynamic_network_architectures."),
])
def test_unknown_architecture_class(copy, tmp_path, cls, says):
    def edit(plans):
        plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"] = cls
    _edit_plans(copy, edit)
    line = _cli_export(copy, tmp_path / "out")
    assert cls in line and says in line


def test_checkpoint_of_another_configuration(copy, tmp_path):
    def edit(plans):
        plans["configurations"]["3d_lowres"] = {"inherits_from": "3d_fullres", "spacing": [4.0, 1.6, 1.6]}
    _edit_plans(copy, edit)
    line = _cli_export(copy, tmp_path / "out", "--configuration", "3d_lowres")
    assert "trained for configuration '3d_fullres', not '3d_lowres'" in line


def test_configuration_not_in_plans(copy, tmp_path):
    line = _cli_export(copy, tmp_path / "out", "--configuration", "2d")
    assert "configuration '2d' is not in" in line and "3d_fullres" in line


def test_not_an_nnunet_checkpoint(copy, tmp_path):
    import torch

    torch.save({"state_dict": {}}, copy / "fold_0" / "checkpoint_final.pth")
    line = _cli_export(copy, tmp_path / "out")
    assert "is not an nnU-Net checkpoint (no network_weights, init_args, trainer_name)" in line


def test_checkpoint_with_code_refused(copy, tmp_path):
    import torch

    ckpt = torch.load(copy / "fold_0" / "checkpoint_final.pth", weights_only=False)
    ckpt["extra"] = shutil.copyfile  # a global weights_only loading refuses
    torch.save(ckpt, copy / "fold_0" / "checkpoint_final.pth")
    line = _cli_export(copy, tmp_path / "out")
    assert "weights_only loading refuses" in line


@pytest.fixture(scope="module")
def section(results):
    from unetrt.nnunet.export import nnunet_section
    from unetrt.nnunet.results import read_results

    return nnunet_section(read_results(results), 0, "checkpoint_final.pth")


@pytest.mark.parametrize("shape, spacing, says", [
    ((2, 10, 20, 20), [1.0, 1.0, 1.0], "the case has shape (2, 10, 20, 20)"),
    ((10, 20, 20), [1.0, 1.0, 1.0], "the case has shape (10, 20, 20)"),
    ((1, 10, 20, 20), None, "the case has spacing None"),
    ((1, 10, 20, 20), [1.0, 0.0, 1.0], "the case has spacing [1.0, 0.0, 1.0]"),
    ((1, 10, 20, 20), [1.0, 1.0], "the case has spacing [1.0, 1.0]"),
])
def test_bad_case(section, shape, spacing, says):
    from unetrt.errors import InputError
    from unetrt.nnunet.preprocess import preprocess

    with pytest.raises(InputError) as info:
        preprocess(np.ones(shape, np.float32), spacing, section)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_all_zero_case(section):
    from unetrt.errors import InputError
    from unetrt.nnunet.preprocess import preprocess

    with pytest.raises(InputError, match="zero everywhere"):
        preprocess(np.zeros((1, 6, 8, 8), np.float32), [1.0, 1.0, 1.0], section)


# --- the predictor's building blocks against nnunetv2's own --------------------------------------------------

PROPS = {"mean": 80.0, "std": 150.0, "percentile_00_5": -300.0, "percentile_99_5": 500.0, "min": -900.0,
         "max": 1500.0, "median": 70.0}


@pytest.mark.parametrize("scheme, masked", [
    ("CTNormalization", False), ("ZScoreNormalization", False), ("ZScoreNormalization", True),
    ("NoNormalization", False), ("RescaleTo01Normalization", False), ("RGBTo01Normalization", False),
])
def test_normalization_matches_nnunet(scheme, masked):
    pytest.importorskip("nnunetv2")
    from nnunetv2.preprocessing.normalization import default_normalization_schemes as schemes

    from unetrt.nnunet.preprocess import normalize_channel

    rng = np.random.default_rng(0)
    image = rng.normal(100, 400, (6, 9, 11)).astype(np.float32)
    if scheme == "RGBTo01Normalization":
        image = rng.integers(0, 256, image.shape).astype(np.float32)
    mask = np.zeros(image.shape, bool)
    mask[1:5, 2:8, 3:9] = True
    seg = np.where(mask, 0, -1)[None].astype(np.int8)  # nnU-Net marks outside-the-nonzero-region with -1
    ref = getattr(schemes, scheme)  # the plans name nnU-Net's classes
    expected = ref(use_mask_for_norm=masked, intensityproperties=PROPS).run(image.copy(), seg[0])
    got = normalize_channel(image.copy(), scheme, PROPS, mask if masked else None)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_unknown_normalization_scheme():
    from unetrt.errors import ModelConfigError
    from unetrt.nnunet.preprocess import normalize_channel

    with pytest.raises(ModelConfigError, match="'MyNormalization' is not supported"):
        normalize_channel(np.ones((2, 2), np.float32), "MyNormalization", {}, None)


@pytest.mark.parametrize("size, patch", [((40, 64, 70), (16, 32, 32)), ((16, 32, 33), (16, 32, 32)),
                                         ((100, 37), (32, 32)), ((129,), (64,))])
def test_sliding_steps_match_nnunet(size, patch):
    pytest.importorskip("nnunetv2")
    from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window

    from unetrt.nnunet.predict import sliding_steps

    assert sliding_steps(size, patch, 0.5) == [list(s) for s in compute_steps_for_sliding_window(size, patch, 0.5)]


@pytest.mark.parametrize("patch", [(16, 32, 32), (32, 32), (8, 12, 20)])
def test_gaussian_matches_nnunet(patch):
    pytest.importorskip("nnunetv2")
    import torch
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian

    from unetrt.nnunet.predict import gaussian_importance

    ref = compute_gaussian(patch, sigma_scale=1 / 8, value_scaling_factor=10, dtype=torch.float16,
                           device=torch.device("cpu")).float().numpy()
    np.testing.assert_array_equal(gaussian_importance(patch), ref)


@pytest.mark.parametrize("new_shape, current, new, force", [
    ((7, 20, 17), [3.0, 0.8, 0.8], [2.0, 0.8, 0.8], None),    # anisotropic: in-plane, z on its own
    ((11, 15, 23), [3.0, 0.8, 0.8], [2.0, 0.9, 0.6], None),   # ... with z upsampled
    ((4, 26, 9), [3.0, 0.8, 0.8], [5.0, 0.6, 1.5], None),     # ... with z downsampled
    ((9, 13, 40), [1.0, 1.0, 4.0], [1.0, 1.0, 1.0], None),    # the coarse axis is the last one
    ((5, 30, 25), [1.0, 1.0, 1.0], [1.3, 0.7, 0.7], None),    # isotropic: one 3-D resize
    ((12, 22, 17), [4.0, 0.9, 0.9], [0.8, 0.8, 0.8], None),
    ((12, 22, 17), [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], True),   # force_separate_z
    ((7, 22, 17), [2.0, 0.5, 2.0], [1.0, 1.0, 1.0], None),    # two coarse axes: together
])
@pytest.mark.parametrize("order, order_z", [(3, 0), (1, 0), (1, 1)])
def test_resampling_matches_nnunet(new_shape, current, new, force, order, order_z):
    pytest.importorskip("nnunetv2")
    from nnunetv2.preprocessing.resampling.default_resampling import resample_data_or_seg_to_shape

    from unetrt.nnunet.resampling import resample_to_shape

    data = np.random.default_rng(0).normal(size=(2, 7, 20, 17)).astype(np.float32)
    kw = dict(is_seg=False, order=order, order_z=order_z, force_separate_z=force)
    expected = resample_data_or_seg_to_shape(data, new_shape, current, new, **kw)
    got = resample_to_shape(data, new_shape, current, new, **kw)
    assert got.shape == expected.shape == (2, *new_shape) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


class _ModuleRunner:
    """A runner over a torch module with the Runner contract's ``infer(feed, to_host=...)``: numpy when
    ``device_outputs`` is false (what CPU backends return), torch tensors otherwise (what the CUDA
    backends return for ``to_host=False``; here on the CPU, the same torch code path)."""

    def __init__(self, module, device_outputs: bool):
        from unetrt.runtime.base import TensorMeta

        self.module, self.device_outputs = module, device_outputs
        self.input_metadata = {"input": TensorMeta("float32", (None, 1, None, None, None))}
        self.calls = 0

    def infer(self, feed, *, to_host=True):
        import torch

        assert set(feed) == {"input"} and feed["input"].dtype == np.float32
        self.calls += 1
        with torch.no_grad():
            out = self.module(torch.from_numpy(feed["input"]))
        return {"logits": out if self.device_outputs and not to_host else out.numpy()}


@pytest.mark.parametrize("accumulate", ["float16", "float32"])
def test_device_aggregation_equals_host(results, section, accumulate):
    import torch

    from unetrt.nnunet.network import build_network
    from unetrt.nnunet.predict import NnunetPredictor
    from unetrt.nnunet.results import read_results

    r = read_results(results)
    net = build_network(**r.network_kwargs)
    net.load_state_dict(r.folds[0].state_dict)
    data = np.random.default_rng(1).normal(size=(1, 11, 17, 20)).astype(np.float32)
    outs = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: OpenMP threads only cost time (more so on a loaded machine)
    try:
        for device_outputs in (False, True):
            runner = _ModuleRunner(net, device_outputs)
            predictor = NnunetPredictor([runner], section, batch_size=5, accumulate=accumulate)
            outs.append(predictor.sliding_window(runner, data))
            # 2 x 2 x 2 tiles of 8x16x16 over 11x17x20 (step 0.5), 8 mirror combinations, 5 per call
            assert runner.calls == -(-2 * 2 * 2 * 8 // 5)
    finally:
        torch.set_num_threads(threads)
    host, device = outs
    assert isinstance(device, np.ndarray) and device.dtype == host.dtype == np.dtype(accumulate)
    assert device.shape == host.shape == (3, 11, 17, 20)
    np.testing.assert_allclose(device.astype(np.float32), host.astype(np.float32), rtol=0,
                               atol=2e-3 if accumulate == "float16" else 1e-5)
    assert torch.is_tensor(_ModuleRunner(net, True).infer({"input": data[None, :, :8, :16, :16]},
                                                           to_host=False)["logits"])


def test_engine_profile_at_patch_size(results):
    from unetrt.exporter.config import ExportConfig
    from unetrt.nnunet.export import with_patch_profile
    from unetrt.nnunet.results import read_results

    r = read_results(results)
    prof = with_patch_profile(ExportConfig(), r).engine_options.profiles
    assert len(prof) == 1 and (prof[0]["input"].min, prof[0]["input"].max) == ((1, 1, 8, 16, 16), (8, 1, 8, 16, 16))
    assert with_patch_profile(ExportConfig(engine=False), r).engine_options.profiles is None  # no engine: none


@pytest.mark.slow
def test_cli_export_one_fold(results, tmp_path):
    from unetrt.cli.export import export_cmd

    out = tmp_path / "export"
    res = CliRunner().invoke(export_cmd, ["--nnunet", str(results), "--folds", "1", "--configuration", "3d_fullres",
                                          "--no-engine", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{"):])
    assert data["configuration"] == "3d_fullres" and [f["fold"] for f in data["folds"]] == [1]
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "dataset_fingerprint.json", "fold_1", "plans.json"]
    manifest = json.loads((out / "fold_1" / "manifest.json").read_text())
    assert manifest["nnunet"]["fold"] == 1 and manifest["verification"]["passed"] is True
    assert manifest["model"]["kwargs"]["network_class_name"].endswith("PlainConvUNet")


def test_ignore_label_has_no_head(copy):
    pytest.importorskip("nnunetv2")
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    from unetrt.nnunet.results import read_results

    dataset = json.loads((copy / "dataset.json").read_text())
    dataset["labels"]["ignore"] = 3
    (copy / "dataset.json").write_text(json.dumps(dataset))
    assert read_results(copy).num_outputs == LabelManager(dataset["labels"], None).num_segmentation_heads == 3
