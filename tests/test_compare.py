"""Methods side by side: one load, one Retrain per seed shared by every method, the three files, the CLI."""

from __future__ import annotations

import json

import pytest

from hf_unlearn import UnlearnError, compare, unlearn
from hf_unlearn.compare import method_settings
from hf_unlearn.demo import DEMO_RECIPE


@pytest.fixture()
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_compare_shares_one_retrain_per_seed_and_writes_its_files(demo_assets, own_cache, tmp_path, monkeypatch):
    from hf_unlearn import session

    trained = []
    original = session.Loaded._retrain

    def counting(self, seed):
        trained.append(seed)
        return original(self, seed)

    monkeypatch.setattr(session.Loaded, "_retrain", counting)
    out = tmp_path / "cmp"
    comparison = compare(str(demo_assets[0]), str(demo_assets[1]), "3", methods=("rbm", "ft"), seeds=(0, 1),
                         settings={"epochs": 1}, retrain_settings=DEMO_RECIPE, output_dir=out)
    assert trained == [0, 1]  # two methods, two seeds: one Retrain per seed
    assert {p.name for p in out.iterdir()} == {"comparison.json", "comparison.md", "pareto.png"}
    saved = json.loads((out / "comparison.json").read_text())
    assert [row["row"] for row in saved["table"]] == ["rbm", "ft", "none (untouched)", "retrain (gold standard)"]
    assert saved["seeds"] == [0, 1] and saved["table"][1]["Avg.Gap"]["std"] is not None
    md = (out / "comparison.md").read_text()
    assert md.count(" ± ") >= 4 * 7 - 1 and "\n| rbm | " in md
    ft_verdict = next(line for line in md.splitlines() if line.startswith("- **ft**: "))
    assert "did not forget class 3" in ft_verdict.lower()
    rbm, ft = comparison.reports["rbm"], comparison.reports["ft"]
    for a, b in zip(rbm.per_seed, ft.per_seed, strict=True):
        assert a["metrics"]["retrain"] == b["metrics"]["retrain"]
        assert a["metrics"]["original"] == b["metrics"]["original"]
    # a method's row is what the method gives on its own with the same seed and settings
    alone = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="ft", epochs=1, seed=1,
                    reference="retrain", retrain_settings=DEMO_RECIPE).report
    assert ft.per_seed[1]["metrics"] == alone.metrics and alone.retrain["cached"] is True


def test_method_settings_go_to_every_method_that_has_them_or_to_one():
    checked = method_settings(("rbm", "ft"), {"epochs": 2, "rbm.lr": 0.5, "ft": {"batch_size": 32}})
    assert checked["rbm"].epochs == 2 and checked["ft"].epochs == 2
    assert checked["rbm"].lr == 0.5 and checked["ft"].lr != 0.5 and checked["ft"].batch_size == 32
    # a tuning's values go under the user's: shared keys beat them, a method's own key beats both
    tuned = method_settings(("rbm", "ft"), {"epochs": 2, "ft.lr": 0.3}, under={"rbm": {"epochs": 9, "rho": 0.7},
                                                                                "ft": {"lr": 0.002}})
    assert tuned["rbm"].epochs == 2 and tuned["rbm"].rho == 0.7 and tuned["ft"].lr == 0.3
    with pytest.raises(UnlearnError, match="no method named has a setting 'nonsense'"):
        method_settings(("rbm", "ft"), {"nonsense": 1})
    with pytest.raises(UnlearnError, match="names method 'salun', which is not among rbm, ft"):
        method_settings(("rbm", "ft"), {"salun.lr": 1})


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--methods", ","], "--methods expects method names"),
    (["--methods", "rbm,rbm"], "each method may be compared once"),
    (["--methods", "rbm,nope"], "nope"),
    (["--method", "rbm"], "compare takes --methods"),
    (["--set", "nonsense=1"], "no method named has a setting 'nonsense'"),
])
def test_compare_cli_bad_input_is_one_line(demo_assets, tmp_path, capsys, extra, fragment):
    from hf_unlearn.cli import main

    code = main(["compare", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--output", str(tmp_path / "c"), "--quiet", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "c").exists()


def test_compare_cli_runs_and_prints_the_table(demo_assets, tmp_path, capsys):
    from hf_unlearn.cli import main

    code = main(["compare", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--methods", "rbm,ft", "--seeds", "0", "--epochs", "1", "--output", str(tmp_path / "c"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "| rbm |" in printed and "| ft |" in printed and "saved comparison.json" in printed
    assert (tmp_path / "c" / "pareto.png").stat().st_size > 10_000
