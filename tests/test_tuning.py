"""Tuning on proxy requests: search spaces beside the settings, proxies disjoint from the request and shared
across requests, the defaults as the first trial, ``none`` as the floor, the settings file and its errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from hf_unlearn import ForgetSpec, Tuning, UnlearnError, tune, unlearn
from hf_unlearn.cli import main
from hf_unlearn.demo import DEMO_RECIPE
from hf_unlearn.fields import default_of
from hf_unlearn.forget.kind import TrainingSplit
from hf_unlearn.forget.spec import select_forget
from hf_unlearn.methods import available_methods, get_method
from hf_unlearn.proxies import proxy_requests
from hf_unlearn.search import Choice, search_space
from hf_unlearn.tuning import MethodTuning


@pytest.fixture()
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _split(n_per_class: int = 30, classes: int = 10) -> TrainingSplit:
    labels = np.repeat(np.arange(classes), n_per_class)
    return TrainingSplit(None, labels, [str(c) for c in range(classes)])


def test_every_editing_method_declares_a_search_space_that_holds_its_defaults():
    for name in available_methods():
        method = get_method(name)
        space = search_space(method.settings_cls)
        if name in ("retrain", "none"):
            assert space == {}, name
            continue
        assert {"epochs", "lr"} <= set(space), name  # every method's own knobs come on top of these
        for f in dataclasses.fields(method.settings_cls):
            if f.name in space:
                r, d = space[f.name], default_of(f)
                assert d in r.values if isinstance(r, Choice) else r.low <= d <= r.high, (name, f.name, d)
    assert {"rho", "reset_alpha", "objective"} <= set(search_space(get_method("rbm").settings_cls))
    assert {"lambda_reg", "gamma_reg", "t_proj", "t_gd"} <= set(search_space(get_method("minnorm-og").settings_cls))
    assert "alpha" in search_space(get_method("neggrad+").settings_cls)


def test_class_proxies_are_other_classes_in_one_order_shared_by_requests():
    train = _split()
    three = proxy_requests(ForgetSpec(classes=("3",)), train, 2)
    assert all(p.spec.kind == "class" and len(p.spec.fields.classes) == 1 for p in three)
    picked = [p.spec.fields.classes[0] for p in three]
    assert "3" not in picked and len(set(picked)) == 2
    other = next(c for c in map(str, range(10)) if c not in {"3", *picked})
    assert [p.spec.fields.classes for p in proxy_requests(ForgetSpec(classes=(other,)), train, 2)] == \
        [p.spec.fields.classes for p in three]  # a later request reuses the proxies (and their references)
    two = proxy_requests(ForgetSpec(classes=("1", "2")), train, 2)
    assert all(len(p.spec.fields.classes) == 2 and not {"1", "2"} & set(p.spec.fields.classes) for p in two)
    with pytest.raises(UnlearnError, match="not enough other classes for 2 proxy requests of 5 classes"):
        proxy_requests(ForgetSpec(classes=tuple("01234")), train, 2)


@pytest.mark.parametrize("spec", [ForgetSpec(fraction=0.1, seed=3), ForgetSpec(indices=(1, 5, 9, 200)),
                                  ForgetSpec(count=7, stratified=True)])
def test_other_kinds_get_random_draws_of_the_same_size_disjoint_from_the_request(spec):
    train = _split()
    real = select_forget(spec, train)
    proxies = proxy_requests(spec, train, 3)
    rows = [select_forget(p.spec, train) for p in proxies]
    assert all(len(r) == len(real) and not np.isin(r, real).any() for r in rows)
    assert len({tuple(r) for r in rows}) == 3  # three different draws
    assert all("rows outside the request" in p.description for p in proxies)


def test_a_small_request_disjoint_from_the_pool_gets_the_pool_draws_themselves():
    train = _split()
    a = proxy_requests(ForgetSpec(indices=(0, 1)), train, 2)
    pool = {int(r) for p in a for r in p.spec.fields.indices}
    elsewhere = tuple(int(r) for r in range(len(train)) if r not in pool)[:2]
    b = proxy_requests(ForgetSpec(indices=elsewhere), train, 2)
    assert [p.spec.fields.indices for p in a] == [p.spec.fields.indices for p in b]


def test_tune_searches_from_the_defaults_and_never_returns_worse_than_them(demo_assets, own_cache, tmp_path):
    out = tmp_path / "tuned.json"
    tuning = tune(str(demo_assets[0]), str(demo_assets[1]), ForgetSpec(fraction=0.1, seed=7), ("ft", "rbm"),
                  trials=3, retrain_settings=DEMO_RECIPE, output=out)
    assert tuning.references_cached == 0 and len(tuning.proxies) == 2 and tuning.seeds == [0, 1]
    assert tuning.validation_seeds == [2, 3]  # the best trial is judged against none on seeds no trial saw
    for name, t in tuning.methods.items():
        assert t.trials == 3 and t.defaults_proxy_avg_gap is not None
        assert t.proxy_avg_gap <= t.defaults_proxy_avg_gap  # the defaults are trial 0
        assert t.proxy_avg_gap == pytest.approx(np.mean(t.proxy_avg_gaps))
        assert set(t.settings) <= set(search_space(get_method(name).settings_cls))
        assert t.none_proxy_avg_gap > 0 and len(t.proxy_avg_gaps) == len(t.none_proxy_avg_gaps) == 4
        assert len(t.validation_avg_gaps) == len(t.none_validation_avg_gaps) == 4
    # the file round-trips, and says what it is
    saved = json.loads(out.read_text())
    assert saved["format"] == "hf-unlearn tuned settings" and set(saved["methods"]) == {"ft", "rbm"}
    back = Tuning.load(out)
    assert back.methods["rbm"].settings == tuning.methods["rbm"].settings
    # the proxies' Retrain references are ordinary cached references: a second tuning trains none
    again = tune(str(demo_assets[0]), str(demo_assets[1]), ForgetSpec(fraction=0.1, seed=7), ("ft",), trials=1,
                 retrain_settings=DEMO_RECIPE)
    assert again.references_cached == 8 and again.reference_seconds < tuning.reference_seconds
    # one trial is the defaults alone: on the same proxies it scores what the first tuning's trial 0 did
    assert again.methods["ft"].proxy_avg_gap == tuning.methods["ft"].defaults_proxy_avg_gap


def _tuning(method: str, settings: dict, best: float, none: float) -> Tuning:
    return Tuning(request={"kind": "class", "description": "class 3", "n_forget": 146},
                  proxies=[{"description": "class 7"}, {"description": "class 1"}], sources={}, seeds=[0],
                  methods={method: MethodTuning(method, settings, best, [best - 0.1, best + 0.1], best + 5, none,
                                                trials=4, none_proxy_avg_gaps=[none, none])})


def test_an_edit_ships_only_when_it_beats_none_by_more_than_the_noise():
    def tuned(gaps, nones):
        return MethodTuning("ft", {}, float(np.mean(gaps)), gaps, None, float(np.mean(nones)), trials=1,
                            none_proxy_avg_gaps=nones)

    assert tuned([1.0, 1.1, 0.9, 1.0], [2.0, 2.1, 1.9, 2.0]).beats_none  # better on every pair
    assert not tuned([1.5, 2.4, 1.4, 2.5], [2.0, 2.0, 2.0, 2.0]).beats_none  # a lower mean, within the noise
    assert not tuned([2.0, 2.0], [2.0, 2.0]).beats_none  # a tie is not better
    # judged on the fresh seeds when there are some: a search win that does not hold there is not shipped
    lucky = tuned([1.0, 1.1, 0.9, 1.0], [2.0, 2.1, 1.9, 2.0])
    lucky.validation_avg_gaps, lucky.none_validation_avg_gaps = [2.1, 1.9, 2.3, 1.8], [2.0, 2.0, 2.0, 2.0]
    assert not lucky.beats_none and "did not beat leaving the model alone" in lucky.summary(2)
    # fresh seeds that favour an edit the search found worse than none do not ship it either
    worse = tuned([2.1, 2.2], [2.0, 2.0])
    worse.validation_avg_gaps, worse.none_validation_avg_gaps = [1.0, 1.0], [2.0, 2.0]
    assert not worse.beats_none
    # a gain below one forget example's worth of Avg.Gap is below what the metrics resolve: not shipped
    small = tuned([1.0, 1.0], [1.1, 1.1])
    assert small.beats_none
    small.margin = 0.17  # 100 / (4 gap metrics × 144 forget rows)
    assert not small.beats_none
    assert tuned([1.0, 1.5, 0.8, 1.2], [2.0, 2.0, 2.0, 2.0]).choice() == ("ft", {})
    assert tuned([2.5, 2.0], [2.0, 2.0]).choice() == ("none", {})


def test_run_with_a_settings_file_uses_the_tuned_settings(demo_assets, own_cache, tmp_path, capsys):
    path = _tuning("ft", {"epochs": 2, "lr": 0.003}, 1.0, 3.0).save(tmp_path / "tuned.json")
    out = tmp_path / "run"
    assert main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--settings", str(path), "--output", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "ft" and report["settings"]["epochs"] == 2 and report["settings"]["lr"] == 0.003
    assert report["settings"]["tuned"]["source"] == "tuned.json"
    assert report["settings"]["tuned"]["summary"].startswith("tuned on 2 proxy requests, 4 trials")
    # --set still wins over the file
    out2 = tmp_path / "run2"
    assert main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--settings", str(path), "--set", "epochs=1", "--output", str(out2), "--quiet"]) == 0
    assert json.loads((out2 / "report.json").read_text())["settings"]["epochs"] == 1


def test_a_tuning_that_beat_nothing_ships_the_untouched_model(demo_assets, own_cache, tmp_path, capsys):
    path = _tuning("rbm", {"epochs": 9, "lr": 0.09}, 4.0, 2.0).save(tmp_path / "tuned.json")
    out = tmp_path / "run"
    assert main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--method", "rbm", "--settings", str(path), "--output", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "note: rbm: tuned on 2 proxy requests, 4 trials: proxy Avg.Gap 4.00 (defaults 9.00; untouched 2.00); it " \
           "did not beat leaving the model alone" in err and "running 'none', which returns the untouched model" in err
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "none" and report["settings"]["tuned"]["beats_none"] is False
    from safetensors.torch import load_file

    saved, original = load_file(out / "model.safetensors"), load_file(demo_assets[0] / "model.safetensors")
    assert saved.keys() == original.keys() and all(torch.equal(saved[k], original[k]) for k in saved)


def test_none_is_the_untouched_model_and_its_metrics_are_the_originals(demo_assets):
    result = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="none")
    orig = dict(result.original_model.named_parameters())
    assert all(torch.equal(p, orig[n]) for n, p in result.model.named_parameters())
    m = result.report.metrics
    assert m["unlearned"] == m["original"]
    with pytest.raises(UnlearnError, match="unknown setting 'epochs' for method 'none'"):
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="none", epochs=1)


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "is not JSON"),
    (json.dumps({"methods": {}}), "is not an hf-unlearn tuned-settings file"),
    (json.dumps({"format": "hf-unlearn tuned settings", "version": 99}), "of version 99"),
    (json.dumps({"format": "hf-unlearn tuned settings", "version": 1, "methods": {"ft": {"x": 1}}}), "damaged"),
])
def test_a_bad_settings_file_is_one_line(demo_assets, tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--settings", str(path), "--output", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_a_method_the_file_does_not_cover_is_named(demo_assets, tmp_path, capsys):
    path = _tuning("ft", {"epochs": 2}, 1.0, 3.0).save(tmp_path / "tuned.json")
    assert main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--method", "salun", "--settings", str(path), "--output", str(tmp_path / "o"), "--quiet"]) == 2
    assert "has tuned settings for ft, not for 'salun'" in capsys.readouterr().err


def test_tune_refuses_what_it_cannot_do_before_loading(tmp_path):
    with pytest.raises(UnlearnError, match="tune\\(\\) has no keyword 'method'"):
        tune("m", "d", "3", method="ft")
    with pytest.raises(UnlearnError, match="trials must be at least 1"):
        tune("m", "d", "3", trials=0)
    with pytest.raises(UnlearnError, match="'none' has nothing to tune"):
        tune("m", "d", "3", methods=("none",))


def test_the_tuner_starts_from_the_defaults_and_one_failing_method_costs_the_others_nothing(demo_assets, own_cache,
                                                                                               monkeypatch):
    """The search itself, with each run's Avg.Gap faked (no training): trial 0 is the defaults, aliases are the
    registered names, a method whose every trial diverges is listed as failed, a divergence on a fresh seed
    counts as infinitely far (so that method is tuned to none)."""
    from hf_unlearn import tuning as T

    calls: list[tuple[str, int, dict]] = []

    def fake_gap(loaded, method, settings, seed):
        values = dataclasses.asdict(settings)
        calls.append((method, seed, values))
        if method == "salun":
            raise UnlearnError("salun: the loss became nan at epoch 1: lower the learning rate")
        if method == "ft" and seed >= 2:  # the fresh seeds
            raise UnlearnError("the model's outputs are not finite")
        return 1.0 + abs(np.log10(values["lr"]) + 2.5)  # best near lr = 10^-2.5

    monkeypatch.setattr(T, "_gap", fake_gap)
    monkeypatch.setattr(T, "_untouched_gap", lambda loaded, seed: 2.0)
    tuning = tune(str(demo_assets[0]), str(demo_assets[1]), ForgetSpec(classes=("3",)), ("minnorm", "ft", "salun"),
                  trials=6, retrain_settings=DEMO_RECIPE)
    assert set(tuning.methods) == {"minnorm-og", "ft"} and set(tuning.failed) == {"salun"}
    assert "no trial of 'salun' finished (6 of 6 failed, the last: salun: the loss became nan" in tuning.failed["salun"]
    first = next(v for m, _, v in calls if m == "minnorm-og")
    defaults = get_method("minnorm-og").settings()
    assert {k: first[k] for k in search_space(type(defaults))} == \
        {k: getattr(defaults, k) for k in search_space(type(defaults))}  # trial 0 is the defaults
    mn, ft = tuning.methods["minnorm-og"], tuning.methods["ft"]
    assert mn.defaults_proxy_avg_gap == pytest.approx(1.5) and mn.proxy_avg_gap <= 1.5 and mn.beats_none
    assert ft.validation_avg_gaps == [np.inf] * 4 and not ft.beats_none and ft.choice() == ("none", {})
    assert tuning.seeds == [0, 1] and tuning.validation_seeds == [2, 3]
    assert {s for m, s, _ in calls if m == "ft"} == {0, 1, 2, 3}


def test_a_settings_file_can_set_nothing_but_the_methods_own_settings(tmp_path):
    good = _tuning("ft", {"epochs": 2, "lr": 0.003}, 1.0, 3.0)
    for entry, message in [({"cache_dir": "/tmp/anywhere"}, "'cache_dir' is not a setting of method 'ft'"),
                           ({"seeds": "0,1,2,3,4,5,6,7,8,9,10,11"}, "'seeds' is not a setting of method 'ft'"),
                           ({"epochs": -3}, "epochs must be a positive integer"),
                           ({"lr": "fast"}, "setting 'lr' of method 'ft' must be a float")]:
        data = good.to_dict()
        data["methods"]["ft"]["settings"] = entry
        path = tmp_path / "evil.json"
        path.write_text(json.dumps(data))
        with pytest.raises(UnlearnError, match=message):
            Tuning.load(path)
    data = good.to_dict()
    data["methods"] = {"minnorm": {**data["methods"]["ft"], "method": "minnorm"}}
    (tmp_path / "alias.json").write_text(json.dumps(data))
    with pytest.raises(UnlearnError, match="the entry 'minnorm' is not a method's registered name"):
        Tuning.load(tmp_path / "alias.json")
    for broken in ({"methods": ["ft"]}, {"methods": {"ft": {**good.to_dict()["methods"]["ft"], "trials": "x"}}},
                   {"proxies": "abc"}):
        data = {**good.to_dict(), **broken}
        (tmp_path / "broken.json").write_text(json.dumps(data))
        with pytest.raises(UnlearnError, match="damaged tuned-settings file"):
            Tuning.load(tmp_path / "broken.json")
    deep = tmp_path / "deep.json"
    deep.write_text('{"format": "hf-unlearn tuned settings", "version": 1, "request": ' + "[" * 100_000
                    + "]" * 100_000 + "}")
    with pytest.raises(UnlearnError):
        Tuning.load(deep)


def test_the_tune_command_writes_a_file_that_compare_and_run_read(demo_assets, own_cache, tmp_path, capsys):
    recipe = [f"--retrain-set={k}={v}" for k, v in DEMO_RECIPE.items()]
    sources = ["--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3"]
    path = tmp_path / "tuned.json"
    assert main(["tune", *sources, "--methods", "ft", "--trials", "1", *recipe, "--output", str(path),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| ft | 1 (0, 0) |" in out and f"saved the tuned settings to {path}" in out
    tuned = Tuning.load(path).methods["ft"]
    assert main(["tune", *sources, "--methods", "ft", "--trials", "1", "--output", str(path), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    # compare reads it: ft at the tuned settings, with none beside it; --set still wins
    cmp = tmp_path / "cmp"
    assert main(["compare", *sources, "--methods", "ft", "--seeds", "0", "--settings", str(path), "--set",
                 "batch_size=32", *recipe, "--output", str(cmp), "--quiet"]) == 0
    report = json.loads((cmp / "comparison.json").read_text())["reports"]["ft"]
    assert report["settings"]["epochs"] == tuned.settings["epochs"] and report["settings"]["batch_size"] == 32
    assert [row["row"] for row in json.loads((cmp / "comparison.json").read_text())["table"]] == \
        ["ft", "none (untouched)", "retrain (gold standard)"]
