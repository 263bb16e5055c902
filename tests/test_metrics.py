"""The metric definitions of shared/docs/unlearning.md on hand-built cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_unlearn.metrics import avg_gap, core


def test_ua_ra_ta_from_a_known_prediction_table():
    # forget: 3 of 4 right -> forget acc 75, UA 25; retain 5/5; test 2 of 4
    f_pred, f_y = np.array([1, 1, 2, 0]), np.array([1, 1, 2, 2])
    r_pred, r_y = np.array([0, 1, 2, 0, 1]), np.array([0, 1, 2, 0, 1])
    t_pred, t_y = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 0])
    assert core.accuracy(f_pred, f_y) == 75.0
    assert 100 - core.accuracy(f_pred, f_y) == 25.0
    assert core.accuracy(r_pred, r_y) == 100.0
    assert core.accuracy(t_pred, t_y) == 50.0
    assert math.isnan(core.accuracy(np.array([]), np.array([])))


def test_per_class_accuracy_marks_absent_classes():
    pred, y = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])
    assert core.per_class_accuracy(pred, y, 4) == [100.0, 50.0, 100.0, None]


def test_true_prob_and_cross_entropy_agree():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    y = np.array([0, 2])
    p = core.softmax_true_prob(logits, y)
    assert p[1] == pytest.approx(1 / 3)
    assert core.cross_entropy(logits, y) == pytest.approx(-np.log(p))


def test_mia_efficacy_near_100_when_forget_looks_like_test():
    rng = np.random.default_rng(0)
    retain = rng.uniform(0.95, 1.0, 2000)   # members: very confident
    test = rng.uniform(0.2, 0.7, 1000)     # non-members: unsure
    forget = rng.uniform(0.2, 0.7, 300)     # looks unseen
    assert core.mia_efficacy(retain, test, forget, seed=0) > 95


def test_mia_efficacy_near_0_when_forget_looks_like_retain():
    rng = np.random.default_rng(1)
    retain = rng.uniform(0.95, 1.0, 2000)
    test = rng.uniform(0.2, 0.7, 1000)
    forget = rng.uniform(0.95, 1.0, 300)    # still memorised
    assert core.mia_efficacy(retain, test, forget, seed=0) < 5


def test_mia_efficacy_member_draw_is_seeded_random_not_first_rows():
    # The first 100 retain rows look like test rows; a "first N" draw would be fooled.
    rng = np.random.default_rng(2)
    retain = np.concatenate([rng.uniform(0.2, 0.7, 100), rng.uniform(0.95, 1.0, 5000)])
    test = rng.uniform(0.2, 0.7, 100)
    forget = rng.uniform(0.2, 0.7, 200)
    assert core.mia_efficacy(retain, test, forget, seed=3) > 90
    assert core.mia_efficacy(retain, test, forget, seed=3) == core.mia_efficacy(retain, test, forget, seed=3)


def test_mia_efficacy_rounded_fit_matches_the_exact_svc():
    """The default fit merges confidences rounded to 1e-4 (weighted); it must agree with the exact SVC."""
    rng = np.random.default_rng(1)
    for a, b, c in [(50, 8, 30), (20, 10, 12)]:  # retain / test / forget confidence shapes, overlapping
        retain, test, forget = 1 - rng.beta(1, a, 3000), 1 - rng.beta(1, b, 1500), 1 - rng.beta(1, c, 800)
        exact = core.mia_efficacy(retain, test, forget, seed=0, resolution=0)
        fast = core.mia_efficacy(retain, test, forget, seed=0)
        assert 5 < exact < 95  # a case where the boundary matters
        assert abs(fast - exact) <= 0.5, (exact, fast)


def test_mia_loss_is_chance_for_identical_losses_and_high_when_separable():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 400)
    same = core.mia_loss(rng.exponential(1.0, 400), y, rng.exponential(1.0, 400), y, seed=0)
    assert 35 < same < 65
    apart = core.mia_loss(rng.uniform(0.0, 0.01, 400), y, rng.uniform(2.0, 3.0, 400), y, seed=0)
    assert apart > 95


def test_mia_loss_test_sample_matches_forget_class_histogram():
    rng = np.random.default_rng(0)
    forget_y = np.array([3] * 50 + [4] * 10)
    test_y = np.repeat(np.arange(10), 20)
    f_rows, t_rows = core.balanced_test_sample(forget_y, test_y, rng)
    assert len(f_rows) == len(t_rows) == 24  # class 3 limited to 20 -> scale 0.4 for both classes
    assert sorted(forget_y[f_rows].tolist()) == sorted(test_y[t_rows].tolist())


def test_avg_gap_by_hand():
    m = {"ua": 10.0, "ra": 90.0, "ta": 80.0, "mia_efficacy": 30.0, "mia_loss": 1.0}
    ref = {"ua": 20.0, "ra": 95.0, "ta": 78.0, "mia_efficacy": 40.0, "mia_loss": 99.0}
    assert avg_gap(m, ref) == pytest.approx((10 + 5 + 2 + 10) / 4)
    assert avg_gap(ref, ref) == 0.0


def test_evaluate_module_loads_offline_and_matches_core():
    import evaluate

    from hf_unlearn.metrics import EVALUATE_MODULE_PATH

    rng = np.random.default_rng(0)
    n = 300
    splits = ["forget"] * 60 + ["retain"] * 120 + ["test"] * 120
    refs = rng.integers(0, 3, n)
    preds = np.where(rng.uniform(size=n) < 0.8, refs, (refs + 1) % 3)
    probs, losses = rng.uniform(size=n), rng.exponential(size=n)
    metric = evaluate.load(EVALUATE_MODULE_PATH)
    out = metric.compute(predictions=preds, references=refs, true_probs=probs, losses=losses, splits=splits)
    s = np.array(splits)
    assert out["forget_acc"] == pytest.approx(core.accuracy(preds[s == "forget"], refs[s == "forget"]))
    assert out["ua"] == pytest.approx(100 - out["forget_acc"])
    assert out["ra"] == pytest.approx(core.accuracy(preds[s == "retain"], refs[s == "retain"]))
    assert out["ta"] == pytest.approx(core.accuracy(preds[s == "test"], refs[s == "test"]))
    assert out["mia_efficacy"] == pytest.approx(
        core.mia_efficacy(probs[s == "retain"], probs[s == "test"], probs[s == "forget"]))
