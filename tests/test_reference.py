"""The Retrain reference: the right starting point for fine-tunes, the cache, several seeds."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import TOKEN

from hf_unlearn import UnlearnError, unlearn
from hf_unlearn.demo import DEMO_RECIPE

#: the same short recipe for both starting points: a pre-trained backbone must show in one epoch
SHORT = {**DEMO_RECIPE, "epochs": 1, "batch_size": 128}


def _resnet(num_labels: int = 10):
    from transformers import ResNetConfig, ResNetForImageClassification

    names = [str(i) for i in range(num_labels)]
    config = ResNetConfig(num_channels=3, embedding_size=16, hidden_sizes=[32, 64], depths=[1, 1],
                          layer_type="basic", downsample_in_first_stage=False, num_labels=num_labels,
                          id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    return ResNetForImageClassification(config)


@pytest.fixture(scope="module")
def pretrained_and_finetuned(demo_assets, digits, tmp_path_factory):
    """A "base" pre-trained on half the digits' training rows and a fine-tune of it on all of them, as folders.

    The fine-tune's card names the base as ``base_model``, as a Hub fine-tune's does.
    """
    import datasets
    from accelerate.utils import set_seed
    from transformers import AutoImageProcessor

    from hf_unlearn.training import train_original

    root = tmp_path_factory.mktemp("finetune")
    processor = AutoImageProcessor.from_pretrained(str(demo_assets[0]))
    half = datasets.DatasetDict({"train": digits["train"].select(range(len(digits["train"]) // 2)),
                                 "test": digits["test"]})
    set_seed(0)
    base = _resnet()
    train_original(base, processor, half, DEMO_RECIPE, seed=0)
    base.save_pretrained(root / "base")
    processor.save_pretrained(root / "base")
    train_original(base, processor, digits, {**DEMO_RECIPE, "epochs": 3, "lr": 0.01}, seed=0)
    base.save_pretrained(root / "finetuned")
    processor.save_pretrained(root / "finetuned")
    return root


def _card(base_id: str) -> str:
    return f"---\nbase_model: {base_id}\nlibrary_name: transformers\n---\n# digits fine-tune\n"


@pytest.fixture()
def finetune_on_hub(published, pretrained_and_finetuned):
    """alice/digits-base (no card) and alice/digits-ft (card: base_model alice/digits-base) on the loopback Hub."""
    from huggingface_hub import HfApi

    api = HfApi(token=TOKEN)
    for name in ("base", "finetuned"):
        api.create_repo(f"alice/digits-{name}")
        api.upload_folder(folder_path=str(pretrained_and_finetuned / name), repo_id=f"alice/digits-{name}")
    api.upload_file(path_or_fileobj=_card("alice/digits-base").encode(), path_in_repo="README.md",
                    repo_id="alice/digits-finetuned")
    return published


def _retrain_ta(report) -> float:
    return report.metrics["retrain"]["ta"]


def test_auto_retrains_a_fine_tune_from_its_declared_base(finetune_on_hub, tmp_path):
    from huggingface_hub import ModelCard

    from hf_unlearn import push_to_hub

    common = dict(method="ft", epochs=1, reference="retrain", retrain_settings=SHORT, token=TOKEN,
                  cache_references=False)
    base = unlearn("alice/digits-finetuned", "alice/digits", "3", **common)  # retrain_from="auto": the default
    scratch = unlearn("alice/digits-finetuned", "alice/digits", "3", retrain_from="scratch", **common)

    record = base.report.retrain
    commit = finetune_on_hub.state.repos[("model", "alice/digits-base")].refs["main"]
    assert record["from"] == "base" and record["named_by"] == "model card"
    assert record["base"] == {"id": "alice/digits-base", "local": False, "commit": commit}
    assert record["recipe_source"] == "given" and record["recipe"]["epochs"] == 1
    assert scratch.report.retrain["from"] == "scratch" and scratch.report.retrain["base"] is None
    # a silent fall-back to scratch would give the same Retrain; the pre-trained backbone must show
    print(f"Retrain test accuracy under the same 1-epoch recipe: from the base {_retrain_ta(base.report):.2f}, "
          f"from scratch {_retrain_ta(scratch.report):.2f}")
    assert _retrain_ta(base.report) >= _retrain_ta(scratch.report) + 10, (_retrain_ta(base.report),
                                                                          _retrain_ta(scratch.report))
    push_to_hub(base, "alice/digits-ft-unlearned", token=TOKEN)
    card = ModelCard.load("alice/digits-ft-unlearned", token=TOKEN)
    assert "fine-tuned from the pre-trained base alice/digits-base" in card.text and commit[:12] in card.text


def test_a_base_given_explicitly_wins_over_the_card_and_base_without_one_is_an_error(finetune_on_hub,
                                                                                     pretrained_and_finetuned):
    common = dict(method="ft", epochs=1, reference="retrain", retrain_settings=SHORT, token=TOKEN,
                  cache_references=False)
    folder = str(pretrained_and_finetuned / "base")
    given = unlearn("alice/tiny", "alice/digits", "3", retrain_from="base", retrain_base=folder, **common)
    assert given.report.retrain["from"] == "base" and given.report.retrain["named_by"] == "retrain_base"
    assert given.report.retrain["base"]["id"] == folder and len(given.report.retrain["base"]["digest"]) == 64
    with pytest.raises(UnlearnError, match="names no base_model: give the pre-trained checkpoint with "
                                           "retrain_base"):
        unlearn("alice/tiny", "alice/digits", "3", retrain_from="base", **common)
    auto = unlearn("alice/tiny", "alice/digits", "3", **common)  # no declared base: auto is scratch
    assert auto.report.retrain["from"] == "scratch"
    with pytest.raises(UnlearnError, match="Retrain's base 'alice/nothing-here'"):
        unlearn("alice/tiny", "alice/digits", "3", retrain_from="base", retrain_base="alice/nothing-here", **common)


def test_the_default_recipe_is_said_to_be_a_guess(demo_assets, own_cache, tmp_path):
    from hf_unlearn.card import build_model_card

    guessed = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="rbm", reference="retrain").report
    assert guessed.retrain["recipe_source"] == "default" and guessed.retrain["recipe"]["epochs"] == 30
    assert "Avg.Gap (Retrain with a default recipe: original unknown)" in guessed.markdown()
    assert "hf-unlearn's DEFAULT recipe (the original recipe is unknown)" in guessed.summary()
    card = build_model_card(guessed).text
    assert "default recipe" in card and "original recipe is unknown" in card
    given = _demo(demo_assets).report
    assert given.retrain["recipe_source"] == "given" and "default recipe" not in given.markdown()


# ------------------------------------------------------------------ the cache


def _demo(demo_assets, **kw):
    return unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method=kw.pop("method", "rbm"),
                   reference="retrain", retrain_settings=DEMO_RECIPE, **kw)


def _entries(cache_root):
    return sorted(p for p in (cache_root / "references").iterdir() if not p.name.startswith(".")) \
        if (cache_root / "references").is_dir() else []


@pytest.fixture()
def own_cache(monkeypatch, tmp_path):
    """A private, empty hf-unlearn cache for one test (the demo assets stay where the session built them)."""
    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_second_run_reuses_the_reference_and_measures_the_same(demo_assets, own_cache):
    first = _demo(demo_assets)
    second = _demo(demo_assets, method="minnorm-og")
    assert first.report.retrain["cached"] is False and second.report.retrain["cached"] is True
    assert second.report.metrics["retrain"] == first.report.metrics["retrain"]
    assert second.report.retrain_s == first.report.retrain_s
    assert len(_entries(own_cache)) == 1
    again = _demo(demo_assets)
    assert again.report.metrics == first.report.metrics  # a cached reference measures exactly like a fresh one


def test_a_corrupt_entry_is_rebuilt_not_trusted(demo_assets, own_cache):
    first = _demo(demo_assets)
    (entry,) = _entries(own_cache)
    arrays = entry / "outputs.npz"
    blob = bytearray(arrays.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte, size unchanged
    arrays.write_bytes(bytes(blob))
    rebuilt = _demo(demo_assets)
    assert rebuilt.report.retrain["cached"] is False
    assert rebuilt.report.metrics == first.report.metrics
    (entry,) = _entries(own_cache)
    (entry / "reference.json").write_text("{not json")  # a manifest mismatch of another kind
    assert _demo(demo_assets).report.retrain["cached"] is False
    (entry,) = _entries(own_cache)
    (entry / "manifest.json").unlink()  # an entry cut short before its manifest
    assert _demo(demo_assets).report.retrain["cached"] is False
    assert _demo(demo_assets).report.retrain["cached"] is True


def _size(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_the_cache_stays_within_its_limit_evicting_the_least_recently_used(demo_assets, own_cache, monkeypatch):
    """One limit covers the references and the decoded tensors beside them (one family): set to hold the
    tensors and one and a half references, three seeds leave the newest reference and evict the oldest first."""
    _demo(demo_assets, seed=0)
    (first,) = _entries(own_cache)
    limit = _size(own_cache) + _size(first) // 2
    monkeypatch.setenv("HF_UNLEARN_CACHE_MB", str(limit / 2**20))
    for seed in (1, 2):
        _demo(demo_assets, seed=seed)
    entries = _entries(own_cache)
    assert _size(own_cache) <= limit and len(entries) == 1, (_size(own_cache), limit, len(entries))
    keys = [json.loads((e / "manifest.json").read_text())["key"]["seed"] for e in entries]
    assert keys == [2]  # the newest stays, the oldest went first
    assert (own_cache / "tensors").is_dir() and any((own_cache / "tensors").glob("*/pixels.npy"))
    assert _demo(demo_assets, seed=2).report.retrain["cached"] is True
    assert _demo(demo_assets, seed=0).report.retrain["cached"] is False


def test_the_key_changes_with_what_determines_the_reference(demo_assets, own_cache):
    _demo(demo_assets)
    assert _demo(demo_assets, retrain_from="scratch").report.retrain["cached"] is True  # scratch is auto's choice
    assert unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="rbm", reference="retrain",
                   retrain_settings={**DEMO_RECIPE, "epochs": 11}).report.retrain["cached"] is False
    assert unlearn(str(demo_assets[0]), str(demo_assets[1]), "4", method="rbm", reference="retrain",
                   retrain_settings=DEMO_RECIPE).report.retrain["cached"] is False
    assert _demo(demo_assets, seed=1).report.retrain["cached"] is False
    assert _demo(demo_assets, cache_references=False).report.retrain["cached"] is False
    assert len(_entries(own_cache)) == 4


def test_a_changed_model_folder_is_a_new_key(demo_assets, own_cache, tmp_path):
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "model"
    shutil.copytree(demo_assets[0], copy)
    assert unlearn(str(copy), str(demo_assets[1]), "3", method="rbm", reference="retrain",
                   retrain_settings=DEMO_RECIPE).report.retrain["cached"] is False
    weights = load_file(str(copy / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name] + 1e-3
    save_file(weights, str(copy / "model.safetensors"), metadata={"format": "pt"})
    assert unlearn(str(copy), str(demo_assets[1]), "3", method="rbm", reference="retrain",
                   retrain_settings=DEMO_RECIPE).report.retrain["cached"] is False


# ------------------------------------------------------------------ seeds


def test_several_seeds_give_mean_and_std_and_each_seed_equals_its_own_run(demo_assets, own_cache):
    many = _demo(demo_assets, seeds=(0, 1, 2), cache_references=False).report
    assert many.seeds == [0, 1, 2] and [s["seed"] for s in many.per_seed] == [0, 1, 2]
    for entry in many.per_seed:
        alone = _demo(demo_assets, seed=entry["seed"], cache_references=False).report
        assert entry["metrics"] == alone.metrics, entry["seed"]
        assert entry["avg_gap"] == alone.avg_gap
    for key in ("ua", "ra", "ta", "mia_efficacy"):
        values = [s["metrics"]["unlearned"][key] for s in many.per_seed]
        assert many.metrics["unlearned"][key] == pytest.approx(np.mean(values))
        assert many.metrics_std["unlearned"][key] == pytest.approx(np.std(values, ddof=1))
    gaps = [s["avg_gap"]["unlearned"] for s in many.per_seed]
    assert many.avg_gap["unlearned"] == pytest.approx(np.mean(gaps))
    assert len({s["metrics"]["retrain"]["mia_loss"] for s in many.per_seed}) > 1  # each seed drew its own Retrain
    assert " ± " in many.markdown() and "seeds 0, 1, 2 (mean ± std)" in many.summary()


def test_seeds_from_the_cli_and_bad_seeds(demo_assets, tmp_path, capsys):
    from hf_unlearn.cli import main

    out = tmp_path / "out"
    assert main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--method", "rbm", "--seeds", "0,1", "--output", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["seeds"] == [0, 1] and report["metrics_std"]["unlearned"]["ua"] is not None
    for bad, message in (("0,x", "seeds must be integers separated by commas"), ("1,1", "seeds must differ")):
        assert main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class",
                     "3", "--seeds", bad, "--output", str(tmp_path / bad), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


# ------------------------------------------------------------------ review: heads, keys, recipes, failures


def _tiny_vit():
    from transformers import ViTConfig, ViTForImageClassification

    return ViTForImageClassification(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                               intermediate_size=64, image_size=16, patch_size=8, num_labels=3))


def _tiny_clip():
    from transformers import CLIPConfig, CLIPForImageClassification

    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    return CLIPForImageClassification(CLIPConfig(vision_config=dict(small, image_size=16, patch_size=8),
                                                 text_config=small, num_labels=3))


def _tiny_timm():
    pytest.importorskip("timm")
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    return TimmWrapperForImageClassification(TimmWrapperConfig(architecture="resnet10t", num_labels=3))


@pytest.mark.parametrize("make", [_tiny_vit, _tiny_clip, _resnet, _tiny_timm], ids=["vit", "clip", "resnet", "timm"])
def test_a_fresh_head_is_drawn_from_the_seed_and_the_backbone_is_kept(make, tmp_path):
    import torch

    from hf_unlearn.reference import fresh_head, head_modules

    model = make()
    model.save_pretrained(tmp_path)  # loaded weights carry transformers' "already initialised" marks
    model = type(model).from_pretrained(tmp_path)
    head = {id(p) for m in head_modules(model) for p in m.parameters(recurse=False)}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert head and len(head) < len(before)
    fresh_head(model, seed=3)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(id(p) in head for n, p in model.named_parameters() if n in changed)
    first = {n: p.detach().clone() for n, p in model.named_parameters()}
    fresh_head(model, seed=3)
    assert all(torch.equal(p, first[n]) for n, p in model.named_parameters())  # the same seed, the same head


def test_a_model_whose_head_cannot_be_told_is_refused_not_reset_whole():
    from torch import nn

    from hf_unlearn.reference import fresh_head

    with pytest.raises(UnlearnError, match="cannot tell the classification head of Sequential"):
        fresh_head(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), seed=0)


def test_the_recipe_is_given_whole_in_part_or_guessed():
    from hf_unlearn import RunConfig

    def config(recipe):
        return RunConfig.from_keywords(model="m", dataset="d", forget="3", reference="retrain",
                                       retrain_settings=recipe)

    assert config(DEMO_RECIPE).recipe_source == "given"
    partial = config({"epochs": 3, "lr": 0.1})
    assert partial.recipe_source == "partial" and partial.recipe_given == ("epochs", "lr")
    assert config(None).recipe_source == "default" and config({}).recipe_source == "default"
    with pytest.raises(UnlearnError, match="no 'init' to set: where Retrain starts is retrain_from"):
        config({"init": "given"})


def test_bad_cache_limit_fails_before_any_work(demo_assets, monkeypatch):
    monkeypatch.setenv("HF_UNLEARN_CACHE_MB", "lots")
    with pytest.raises(UnlearnError, match="HF_UNLEARN_CACHE_MB must be a size in megabytes"):
        _demo(demo_assets)


def test_stale_temporary_folders_are_swept_and_a_model_without_commit_is_its_weights(own_cache):
    import os
    import time

    from hf_unlearn.cache import FolderCache
    from hf_unlearn.reference import source_identity

    cache = FolderCache(own_cache / "references")
    cache.root.mkdir(parents=True)
    (stale := cache.root / ".tmp-dead").mkdir()
    (fresh := cache.root / ".tmp-writing").mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    cache.evict()
    assert not stale.exists() and fresh.exists()
    a, b = _resnet(), _resnet()
    unresolved = {"id": "alice/x", "local": False, "commit": None}
    assert source_identity(unresolved, a)["digest"] != source_identity(unresolved, b)["digest"]
    assert source_identity({"id": "/some/folder", "local": True}, a, in_memory=True) == source_identity(
        unresolved, a, in_memory=True)


def test_a_model_in_memory_has_no_card_to_name_its_base(demo_model, digits):
    model, processor = demo_model
    with pytest.raises(UnlearnError, match="a model given in memory has no model card to name its base"):
        unlearn(model, digits, "3", processor=processor, method="ft", epochs=1, reference="retrain",
                retrain_settings=SHORT, retrain_from="base")


def test_retrain_as_the_method_starts_from_the_base_too(finetune_on_hub):
    report = unlearn("alice/digits-finetuned", "alice/digits", "3", method="retrain", token=TOKEN,
                     **SHORT).report
    assert report.retrain["from"] == "base" and report.retrain["base"]["id"] == "alice/digits-base"
    assert report.retrain["recipe"]["init"] == "given" and report.metrics["unlearned"]["ta"] > 90
