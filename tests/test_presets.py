"""The presets of real Hub models: their ids, lookup, the size and time estimate, and the offline lines."""

from __future__ import annotations

import dataclasses
import math
import re
import time

import pytest

from hf_unlearn import presets as P
from hf_unlearn.presets import PRESETS, Estimate, estimate, find_preset, preset_lines, throughput_flops

#: a Hub repo id: namespace/name, letters, digits, "-", "_", "." (no leading or trailing separator)
REPO_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
FLOPS = 1e12


def test_there_are_five_to_seven_presets_covering_vit_resnet_and_convnext():
    assert 5 <= len(PRESETS) <= 7
    archs = {p.architecture for p in PRESETS}
    assert {"ViT-B/16", "ResNet-50", "ConvNeXt-T"} <= archs
    assert {p.dataset for p in PRESETS} >= {"uoft-cs/cifar10", "uoft-cs/cifar100", "ylecun/mnist"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.model)
def test_every_id_is_a_hub_repo_id_and_every_figure_is_sensible(preset):
    for repo in (preset.model, preset.dataset, preset.base_model):
        assert repo and REPO_ID.match(repo) and "--" not in repo and ".." not in repo, repo
    assert preset.train_split and preset.test_split and preset.train_split != preset.test_split
    assert preset.image_column and preset.label_column
    assert preset.model in preset.label
    for name in ("parameters_m", "weights_mb", "dataset_mb", "n_train", "n_test", "image_size", "gflops",
                 "base_mb", "num_classes", "retrain_epochs"):
        value = getattr(preset, name)
        assert value > 0 and math.isfinite(value), name
    # the weights are float32: 4 bytes per parameter, within a few per cent
    assert preset.weights_mb == pytest.approx(4 * preset.parameters_m, rel=0.03)
    assert preset.note


def test_the_dataset_columns_are_the_hubs():
    columns = {(p.dataset, p.dataset_config, p.image_column, p.label_column) for p in PRESETS}
    assert columns <= {("uoft-cs/cifar10", "plain_text", "img", "label"),
                       ("uoft-cs/cifar100", "cifar100", "img", "fine_label"),
                       ("ylecun/mnist", "mnist", "image", "label")}
    assert all(p.num_classes == 100 for p in PRESETS if p.dataset == "uoft-cs/cifar100")


def test_labels_are_unique_and_find_preset_round_trips():
    labels = [p.label for p in PRESETS]
    assert len(set(labels)) == len(labels)
    assert len({p.model for p in PRESETS}) == len(PRESETS)
    for p in PRESETS:
        assert find_preset(p.label) is p
        assert find_preset(f"  {p.label} ") is p
        assert find_preset(p.model) is p
    assert find_preset("no such preset") is None
    assert find_preset("") is None


def test_presets_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS[0].model = "someone/else"  # type: ignore[misc]


def test_the_estimate_is_pure_given_the_throughput():
    p = PRESETS[0]
    a, b = estimate(p, device="cpu", flops=FLOPS), estimate(p, device="cpu", flops=FLOPS)
    assert a == b and isinstance(a, Estimate)
    assert a.flops == FLOPS and a.device == "cpu"
    assert a.download_mb == pytest.approx(p.weights_mb + p.base_mb + p.dataset_mb)


def test_the_estimate_adds_up_method_retrain_and_evaluation():
    p = PRESETS[0]
    forward = 2 * p.gflops * 1e9
    retain = p.n_train * (1 - 1 / p.num_classes)
    expected = (3 * forward * retain * (5 + p.retrain_epochs) + 3 * forward * (p.n_train + p.n_test)) / FLOPS
    assert estimate(p, epochs_per_run=5, device="cpu", flops=FLOPS).seconds == pytest.approx(expected)


def test_estimates_scale_sensibly():
    p = PRESETS[0]
    base = estimate(p, device="cpu", flops=FLOPS).seconds
    assert estimate(p, device="cpu", flops=2 * FLOPS).seconds == pytest.approx(base / 2)
    heavier = dataclasses.replace(p, gflops=2 * p.gflops)
    assert estimate(heavier, device="cpu", flops=FLOPS).seconds == pytest.approx(2 * base)
    more_rows = dataclasses.replace(p, n_train=2 * p.n_train, n_test=2 * p.n_test)
    assert estimate(more_rows, device="cpu", flops=FLOPS).seconds == pytest.approx(2 * base)
    assert estimate(p, epochs_per_run=10, device="cpu", flops=FLOPS).seconds > base
    longer_recipe = dataclasses.replace(p, retrain_epochs=p.retrain_epochs + 10)
    assert estimate(longer_recipe, device="cpu", flops=FLOPS).seconds > base
    # across the presets: one that needs at least as much of everything takes at least as long
    def dominates(a, b):
        return all(getattr(a, f) >= getattr(b, f) for f in ("gflops", "n_train", "n_test", "retrain_epochs",
                                                              "num_classes"))
    for a in PRESETS:
        for b in PRESETS:
            if dominates(a, b):
                assert estimate(a, device="cpu", flops=FLOPS).seconds >= estimate(b, device="cpu", flops=FLOPS).seconds


def test_a_bad_throughput_is_refused():
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            estimate(PRESETS[0], device="cpu", flops=bad)


@pytest.mark.parametrize(("seconds", "unit"), [(30, " s"), (600, " min"), (3 * 3600, " h"), (5 * 86400, " days")])
def test_the_text_is_one_short_line_in_a_readable_unit(seconds, unit):
    e = Estimate(download_mb=343.2, seconds=seconds, device="cpu", flops=FLOPS)
    text = e.text()
    assert "\n" not in text and len(text) < 100
    assert text.startswith("≈ 343 MB to download; ≈ ") and text.endswith("per run with Retrain on this CPU (rough)")
    assert f"{unit} per run" in text
    assert "this GPU" in dataclasses.replace(e, device="cuda").text()
    assert "1.2 GB" in dataclasses.replace(e, download_mb=1234).text()


def test_preset_lines_say_when_the_hub_is_offline():
    online = preset_lines(True, device="cpu", flops=FLOPS)
    offline = preset_lines(False, device="cpu", flops=FLOPS)
    assert len(online) == len(offline) == len(PRESETS)
    for p, on, off in zip(PRESETS, online, offline, strict=True):
        assert on.startswith(p.label) and "to download" in on and "offline" not in on
        assert off.startswith(on) and "needs the Hub" in off and "offline" in off
        assert "\n" not in off


def test_throughput_probe_is_quick_positive_finite_and_cached():
    P._probe.cache_clear()
    start = time.perf_counter()
    rate = throughput_flops("cpu")
    first = time.perf_counter() - start
    assert math.isfinite(rate) and rate > 0
    assert first < 2.0
    assert rate == pytest.approx(P._probe("cpu") * P.EFFICIENCY["cpu"])
    start = time.perf_counter()
    assert throughput_flops("cpu") == rate
    assert time.perf_counter() - start < 0.05
    # a measured estimate is finite too
    assert math.isfinite(estimate(PRESETS[0], device="cpu").seconds)
