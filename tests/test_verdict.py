"""Verdicts in words, on hand-made reports: what was forgotten, what was kept, Avg.Gap, speed, and the warnings."""

from __future__ import annotations

import pytest

from hf_unlearn.report import UnlearnReport
from hf_unlearn.verdict import reference_line, verdict


def _row(ua, ra, ta, mia, fcta=None):
    row = {"ua": ua, "forget_acc": 100 - ua, "ra": ra, "ta": ta, "mia_efficacy": mia, "mia_loss": 50.0}
    if fcta is not None:
        row["forget_class_test_acc"] = fcta
    return row


def _report(unlearned, *, original=None, retrain=None, gaps=None, classes=("3",), rte=0.5, retrain_s=9.0,
            recipe_source="given", seeds=None):
    forget = {"kind": "class", "description": "class 3", "n_forget": 146, "class_names": list(classes)} \
        if classes else {"kind": "random", "description": "300 random rows", "n_forget": 300, "class_names": []}
    metrics = {"original": original or _row(0.0, 100.0, 99.4, 0.0, 97.3 if classes else None),
               "unlearned": unlearned}
    if retrain is not None:
        metrics["retrain"] = retrain
    return UnlearnReport(method="rbm", settings={}, forget=forget, sources={}, data={"n_forget": 146},
                         class_names=[str(i) for i in range(10)], seed=0, metrics=metrics, avg_gap=gaps, rte_s=rte,
                         retrain_s=retrain_s if retrain is not None else None,
                         retrain={"from": "scratch", "base": None, "recipe": {"epochs": 12, "lr": 0.05},
                                  "recipe_source": recipe_source, "cached": False} if retrain is not None else None,
                         seeds=seeds)


GOLD = _row(100.0, 100.0, 98.8, 100.0, 0.0)


def test_the_example_of_the_issue():
    report = _report(_row(100.0, 99.2, 98.0, 100.0, 0.0), retrain=GOLD,
                     gaps={"original": 50.15, "unlearned": 0.66, "retrain": 0.0}, rte=0.5, retrain_s=9.0)
    assert verdict(report) == ("forgot class 3 (forget-class test accuracy 97.3 → 0.0; Retrain 0.0); kept RA "
                               "within 0.8 points of Retrain; Avg.Gap 0.66, against 50.15 for the untouched model; "
                               "18× faster than retraining")


def test_further_from_retrain_than_the_untouched_model_is_said_first_and_plainly():
    report = _report(_row(0.0, 60.0, 55.0, 0.0, 90.0), retrain=GOLD,
                     gaps={"original": 50.15, "unlearned": 63.4, "retrain": 0.0})
    text = verdict(report)
    assert text.startswith("further from Retrain than the untouched model: this edit made the model less like one "
                           "trained without the forget data. Did not forget class 3")
    assert "RA is 40.0 points below Retrain's (60.0 against 100.0)" in text
    assert "Avg.Gap 63.40, against 50.15 for the untouched model" in text


def test_partly_forgotten_and_not_forgotten():
    partly = _report(_row(70.0, 99.0, 98.0, 80.0, 30.0), retrain=GOLD, gaps={"original": 50.0, "unlearned": 10.0})
    assert verdict(partly).startswith("partly forgot class 3 (forget-class test accuracy 97.3 → 30.0; Retrain 0.0)")
    not_at_all = _report(_row(2.0, 100.0, 99.0, 1.0, 94.6), retrain=GOLD,
                         gaps={"original": 50.0, "unlearned": 49.7})
    assert verdict(not_at_all).startswith("did not forget class 3")


def test_random_rows_are_judged_by_forget_accuracy_against_retrains():
    gold = _row(8.0, 100.0, 92.0, 12.0)
    report = _report(_row(7.0, 99.5, 91.0, 11.0), original=_row(0.0, 100.0, 92.5, 0.0), retrain=gold,
                     gaps={"original": 7.0, "unlearned": 0.9}, classes=())
    assert verdict(report).startswith("forgot the 300 forget rows (forget accuracy 100.0 → 93.0; Retrain 92.0)")


def test_without_a_reference_there_is_nothing_to_judge_against():
    report = _report(_row(100.0, 99.0, 98.0, 100.0, 0.0))
    assert verdict(report) == ("class 3: forget-class test accuracy 97.3 → 0.0 (no Retrain reference to judge it "
                               "against)")


def test_slower_than_retraining_seeds_and_a_guessed_recipe_are_said():
    report = _report(_row(100.0, 99.2, 98.0, 100.0, 0.0), retrain=GOLD, gaps={"original": 50.0, "unlearned": 0.7},
                     rte=12.0, retrain_s=8.0, recipe_source="default", seeds=[0, 1, 2])
    text = verdict(report)
    assert "1.5× slower than retraining (means over 3 seeds)" in text
    assert text.endswith("Retrain used hf-unlearn's default recipe, as the original recipe is unknown: every "
                         "distance is to that guess")
    assert "DEFAULT recipe (the original recipe is unknown)" in reference_line(report)
    assert report.gap_label().startswith("Avg.Gap (Retrain with a default recipe")


@pytest.mark.parametrize(("record", "expected"), [
    ({"from": "base", "base": {"id": "google/vit-base", "commit": "0123456789abcdef"}, "named_by": "model card",
      "recipe": {"epochs": 3}, "recipe_source": "given", "cached": True},
     "Retrain reference: fine-tuned from the pre-trained base google/vit-base at 0123456789ab (named by the model "
     "card), with a new head, with the given recipe (epochs 3); read from the reference cache"),
    ({"from": "scratch", "base": None, "recipe": {"epochs": 12, "lr": 0.05}, "recipe_source": "given",
      "cached": [True, False, False]},
     "Retrain reference: trained from scratch (random initialisation), with the given recipe (epochs 12, lr 0.05); "
     "1 of 3 seeds read from the reference cache"),
])
def test_the_reference_line_says_where_retrain_started(record, expected):
    report = _report(_row(100.0, 99.2, 98.0, 100.0, 0.0), retrain=GOLD)
    report.retrain = record
    assert reference_line(report) == expected


def test_a_partly_given_recipe_is_said_to_be_partly_guessed():
    report = _report(_row(100.0, 99.2, 98.0, 100.0, 0.0), retrain=GOLD, gaps={"original": 50.0, "unlearned": 0.7},
                     recipe_source="partial")
    report.retrain["recipe_given"] = ["epochs"]
    assert verdict(report).endswith("Retrain's recipe is only partly the original's (given: epochs; the rest are "
                                    "hf-unlearn's defaults): every distance is to that partly guessed recipe")
    assert report.gap_label() == "Avg.Gap (Retrain's recipe partly hf-unlearn's defaults)"
    assert "PARTLY hf-unlearn's defaults (given: epochs)" in reference_line(report)


def test_a_value_missing_on_some_seeds_is_not_averaged_over_the_others():
    from hf_unlearn.seeds import mean_std

    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(1.4142135))
    mean, std = mean_std([1.0, None, 3.0])
    assert mean != mean and std != std  # NaN: shown as "–", never the mean of the two that exist
    assert mean_std([None, None]) == (None, None)


def _named(method, gap, original_gap=2.0):
    report = _report(_row(10.0, 99.0, 97.0, 20.0), retrain=GOLD, classes=(),
                     gaps={"original": original_gap, "unlearned": gap, "retrain": 0.0})
    report.method = method
    return report


def test_a_comparison_where_no_edit_beats_leaving_the_model_alone_says_not_to_edit():
    from hf_unlearn.verdict import comparison_verdict

    reports = {"rbm": _named("rbm", 6.78, 2.28), "minnorm-og": _named("minnorm-og", 13.07, 2.28),
               "salun": _named("salun", 65.36, 2.28), "none": _named("none", 2.28, 2.28)}
    text = comparison_verdict(reports)
    assert text.startswith("Better to leave the model alone: no method came closer to Retrain than the untouched "
                           "model (Avg.Gap 2.28; the best edit, rbm, 6.78). We recommend not editing the model")
    assert "hf-unlearn tune" in text
    # a tie is not better either
    assert comparison_verdict({"ft": _named("ft", 2.28, 2.28), "none": _named("none", 2.28, 2.28)}).startswith(
        "Better to leave the model alone")
    # an edit that does come closer is named, with the baseline beside it
    reports["ft"] = _named("ft", 1.16, 2.28)
    assert comparison_verdict(reports) == ("Closest to Retrain: ft (Avg.Gap 1.16, against 2.28 for leaving the "
                                           "model alone)")
    # without a 'none' row the untouched model's own Avg.Gap is the baseline; without a reference, no verdict
    assert comparison_verdict({"rbm": _named("rbm", 3.0, 2.0)}).startswith("Better to leave the model alone")
    no_ref = _named("rbm", 1.0)
    no_ref.avg_gap = None
    assert comparison_verdict({"rbm": no_ref}) is None


def test_none_says_it_left_the_model_as_it_is():
    text = verdict(_named("none", 2.28, 2.28))
    assert text.startswith("left the model as it is (the baseline every edit must beat): ")
    assert text.endswith("Avg.Gap 2.28") and "faster than retraining" not in text
