"""Exact float64 experiments in over-parameterised linear regression (the seed papers' theory).

Shared by ``scripts/theory_rbm.py`` and the tests, so the printed table and
the asserted facts come from the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LinearProblem:
    """Retain and forget rows over ``d`` features, ``d`` > number of rows."""

    x_r: np.ndarray
    y_r: np.ndarray
    x_f: np.ndarray
    y_f: np.ndarray

    @property
    def x(self) -> np.ndarray:
        return np.vstack([self.x_r, self.x_f])

    @property
    def y(self) -> np.ndarray:
        return np.concatenate([self.y_r, self.y_f])


def make_problem(d: int = 400, n_r: int = 40, n_f: int = 10, active: int = 15, overlap: float = 0.0,
                 seed: int = 0) -> LinearProblem:
    """Sparse rows: retain rows use features from pool A, forget rows from pool B.

    ``overlap`` is the share of B's features that also belong to A (0: distinct
    features, the case where RBM is exactly golden). Forget targets are
    shifted ("poisoned") so that forgetting them is measurable.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(d)
    pool_a = perm[: d // 2]
    n_b = d // 4
    n_shared = int(round(overlap * n_b))
    pool_b = np.concatenate([rng.choice(pool_a, n_shared, replace=False), perm[d // 2: d // 2 + n_b - n_shared]])
    w_true = rng.normal(size=d)

    def rows(n: int, pool: np.ndarray) -> np.ndarray:
        x = np.zeros((n, d))
        for i in range(n):
            cols = rng.choice(pool, active, replace=False)
            x[i, cols] = rng.normal(size=active)
        return x

    x_r, x_f = rows(n_r, pool_a), rows(n_f, pool_b)
    return LinearProblem(x_r, x_r @ w_true, x_f, x_f @ w_true + 3.0)


def remaining_loss(p: LinearProblem, w: np.ndarray) -> float:
    return float(np.mean((p.x_r @ w - p.y_r) ** 2))


def unlearning_loss(p: LinearProblem, w: np.ndarray) -> float:
    return float(np.mean((p.x_f @ w - p.y_f) ** 2))


def original(p: LinearProblem) -> np.ndarray:
    """Minimum-norm interpolator of all data (what GD from 0 converges to)."""
    return np.linalg.pinv(p.x) @ p.y


def golden(p: LinearProblem) -> np.ndarray:
    """Minimum-norm interpolator of the retain data: the retrained model."""
    return np.linalg.pinv(p.x_r) @ p.y_r


def fine_tune(p: LinearProblem, w0: np.ndarray, steps: int = 2000) -> np.ndarray:
    """Gradient descent on the remaining loss from ``w0`` (step 1/L)."""
    lr = 1.0 / (2.0 * np.linalg.norm(p.x_r, 2) ** 2 / len(p.y_r))
    w = w0.copy()
    for _ in range(steps):
        w -= lr * 2.0 * p.x_r.T @ (p.x_r @ w - p.y_r) / len(p.y_r)
    return w


def active_features(x: np.ndarray) -> np.ndarray:
    return (np.abs(x) > 0).any(axis=0)


def rbm(p: LinearProblem, w_o: np.ndarray) -> np.ndarray:
    """Retention-based masking: keep the features the retain rows use, zero the rest."""
    return active_features(p.x_r) * w_o


def forget_masking(p: LinearProblem, w_o: np.ndarray) -> np.ndarray:
    """Forgetting-based masking: zero every feature the forget rows use."""
    return (~active_features(p.x_f)) * w_o


def compare(p: LinearProblem) -> dict[str, dict[str, float]]:
    """Remaining loss, unlearning loss and distance to golden of each model."""
    w_o, w_g = original(p), golden(p)
    models = {"original": w_o, "golden": w_g, "FT": fine_tune(p, w_o), "RBM": rbm(p, w_o),
              "forget-mask": forget_masking(p, w_o)}
    return {name: {"remaining_loss": remaining_loss(p, w), "unlearning_loss": unlearning_loss(p, w),
                   "dist_to_golden": float(np.linalg.norm(w - w_g))} for name, w in models.items()}
