"""Saliency masks shared by SalUn and RBM: selection size, save/load, sources, exactness, errors."""

from __future__ import annotations

import pytest
import torch

from hf_unlearn import ForgetSpec, UnlearnError, unlearn
from hf_unlearn.config import DataSource
from hf_unlearn.data import build_data
from hf_unlearn.engine import Engine
from hf_unlearn.methods.masks import WeightMask, build_mask, parameter_kinds, top_rho


@pytest.fixture(scope="module")
def data_and_model(demo_assets):
    import datasets
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(str(demo_assets[0]))
    proc = AutoImageProcessor.from_pretrained(str(demo_assets[0]))
    dsd = datasets.load_dataset(str(demo_assets[1]))
    data, _ = build_data(dsd, DataSource("digits"), ForgetSpec(classes=("3",)), proc, 1)
    return data, model


def _mask(data_and_model, source, rho=0.3, **kw):
    data, model = data_and_model
    split = data.forget if source == "forget" else data.retain
    opts = dict(kind="loss", reduce="abs_of_sum", scope="global", maskable="all", sample=0, batch_size=128, seed=0)
    opts.update(kw)
    return build_mask(Engine(cpu=True), model, split, data.normalizer, source=source, rho=rho, **opts)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_rho_selects_that_fraction_of_maskable_entries(data_and_model, scope):
    m = _mask(data_and_model, "retain", rho=0.3, kind="logit", reduce="sum_of_abs", scope=scope)
    total = sum(t.numel() for t in m.selected.values())
    chosen = sum(int(t.sum()) for t in m.selected.values())
    if scope == "global":
        assert abs(chosen - 0.3 * total) <= 1
    else:
        for t in m.selected.values():
            assert abs(int(t.sum()) - 0.3 * t.numel()) <= 1


def test_maskable_kinds_are_explicit(data_and_model):
    _, model = data_and_model
    kinds = parameter_kinds(model)
    assert {"weight", "norm"} <= set(kinds.values())
    m = _mask(data_and_model, "forget", maskable="weight")
    assert set(m.selected) == {n for n, k in kinds.items() if k == "weight"}
    trainable = m.trainable(model)
    norm_name = next(n for n, k in kinds.items() if k == "norm")
    assert not trainable[norm_name].any()  # non-maskable tensors are frozen whole


def test_saved_mask_reloads_identical(data_and_model, tmp_path):
    m = _mask(data_and_model, "forget", rho=0.4)
    path = m.save(tmp_path / "mask.safetensors")
    back = WeightMask.load(path, data_and_model[1])
    assert back.meta == m.meta and back.meta["source"] == "forget" and back.meta["rho"] == 0.4
    assert set(back.selected) == set(m.selected)
    assert all(torch.equal(back.selected[n], m.selected[n]) for n in m.selected)


def test_salun_and_rbm_masks_from_the_same_data_differ(data_and_model):
    forget_mask = _mask(data_and_model, "forget", rho=0.5)
    retain_mask = _mask(data_and_model, "retain", rho=0.5)
    differ = sum(int((forget_mask.selected[n] != retain_mask.selected[n]).sum()) for n in forget_mask.selected)
    assert differ > 0.05 * sum(t.numel() for t in forget_mask.selected.values())


def test_after_rbm_every_weight_in_the_retain_mask_is_bit_identical(demo_assets):
    result = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="rbm", epochs=2, lr=0.05,
                     reset_alpha=0.5)
    keep = result.artifacts["mask"]
    assert keep.meta["source"] == "retain" and abs(keep.fraction() - 0.5) < 1e-3
    original = dict(result.original_model.named_parameters())
    moved = 0
    for n, p in result.model.named_parameters():
        inside = keep.selected[n]
        assert torch.equal(p.detach()[inside], original[n].detach()[inside]), n
        moved += int((p.detach()[~inside] != original[n].detach()[~inside]).sum())
    assert moved > 0
    assert result.report.settings["mask"]["source"] == "retain"


def test_salun_changes_only_masked_weights(demo_assets):
    result = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="salun", epochs=1)
    mask = result.artifacts["mask"]
    original = dict(result.original_model.named_parameters())
    for n, p in result.model.named_parameters():
        out = ~mask.selected[n]
        assert torch.equal(p.detach()[out], original[n].detach()[out]), n


@pytest.mark.parametrize("rho", [0.0, 1.0, -0.2, 1.5])
def test_rho_outside_open_unit_interval_is_an_error(demo_assets, rho):
    with pytest.raises(UnlearnError, match=r"ρ \(mask ratio\) must be strictly between 0 and 1"):
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="rbm", rho=rho)
    with pytest.raises(UnlearnError, match="strictly between 0 and 1"):
        top_rho({"w": torch.ones(4)}, rho)


def test_mask_for_another_architecture_is_an_error(demo_assets, data_and_model, tmp_path):
    from transformers import ResNetConfig, ResNetForImageClassification

    other = ResNetForImageClassification(ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 8],
                                                      depths=[1, 1], layer_type="basic", num_labels=10))
    data, _ = data_and_model
    m = build_mask(Engine(cpu=True), other, data.retain, data.normalizer, source="retain", rho=0.5, kind="logit",
                   reduce="sum_of_abs", scope="global", maskable="all", sample=0, batch_size=128, seed=0)
    path = m.save(tmp_path / "other.safetensors")
    with pytest.raises(UnlearnError, match="was built for another architecture"):
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="rbm", mask_path=str(path))


def test_saliency_sample_of_size_zero_or_negative_is_an_error(data_and_model):
    data, model = data_and_model
    empty = data.forget.subset(torch.arange(0))
    with pytest.raises(UnlearnError, match="saliency set is empty"):
        build_mask(Engine(cpu=True), model, empty, data.normalizer, source="forget", rho=0.5, kind="loss",
                   reduce="abs_of_sum", scope="global", maskable="all", sample=0, batch_size=64, seed=0)
    with pytest.raises(UnlearnError, match="saliency_samples must be 0"):
        from hf_unlearn.methods import get_method

        get_method("rbm").settings({"saliency_samples": -5})


def test_sampled_saliency_uses_that_many_rows(data_and_model):
    m = _mask(data_and_model, "retain", sample=100)
    assert m.meta["samples"] == 100
