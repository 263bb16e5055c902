"""The RBM paper's linear facts, exactly (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from research import theory


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ft_returns_the_original_weights(seed):
    p = theory.make_problem(overlap=0.25, seed=seed)
    w_o = theory.original(p)
    assert theory.remaining_loss(p, w_o) < 1e-20 and theory.unlearning_loss(p, w_o) < 1e-20
    assert np.linalg.norm(theory.fine_tune(p, w_o) - w_o) < 1e-10


@pytest.mark.parametrize("overlap", [0.0, 0.1, 0.25, 0.5])
def test_rbm_remaining_loss_is_zero(overlap):
    p = theory.make_problem(overlap=overlap)
    assert theory.remaining_loss(p, theory.rbm(p, theory.original(p))) < 1e-20


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_distinct_features_rbm_equals_golden(seed):
    p = theory.make_problem(overlap=0.0, seed=seed)
    assert np.max(np.abs(theory.rbm(p, theory.original(p)) - theory.golden(p))) < 1e-8


@pytest.mark.parametrize("overlap", [0.1, 0.25, 0.5])
def test_with_overlap_forgetting_based_masking_loses_retain_fit(overlap):
    p = theory.make_problem(overlap=overlap)
    w_o = theory.original(p)
    assert theory.remaining_loss(p, theory.forget_masking(p, w_o)) > 1e-3
    assert theory.remaining_loss(p, theory.rbm(p, w_o)) < 1e-20
