"""The NeurIPS 2023 unlearning competition's forgetting-quality score, vectorised across forget examples.

Definition (Triantafillou et al., the competition's ``metric.py``): for every forget example, take its
logit-scaled confidence ``log p_y − log(1 − p_y)`` under N unlearned and N retrained models. The class with
the larger median is "positive". Two families of attacks threshold those 2N values: one threshold (predict
positive at or above it) and two thresholds (predict the peakier distribution between them), each on a fixed
grid of 100 thresholds per unit. Every threshold's false positive and false negative rates give
ε = max(log(1 − δ − FPR) − log FNR, log(1 − δ − FNR) − log FPR), clipped at 0; thresholds where exactly one
rate is 0 are discarded (too few samples), both 0 means perfect separation (ε = ∞); the example's ε is the
largest, capped at 50, and 50 outright when one distribution's range is below 1 % of the other's (the
peakiness rule). The score F gives each example the points of its ε bucket (width 0.5: 1, ½, ¼, … up to
⌈log(N − 1)⌉, nothing beyond) and averages them.

The published code loops over examples and evaluates every threshold pair on a GPU. Here the rates are counts:
a grid threshold's rates depend only on how many of each distribution's N values it lets through, so each
example's thresholds reduce to the set of (true positives, false positives) pairs they reach (for two
thresholds, read only at the left thresholds where a count changes), and ε is read from one table over those
pairs. Grids and comparisons are computed exactly as the definition's (same ``linspace`` arithmetic, same
float32 rates), so the result equals a threshold-by-threshold evaluation; the
test file writes that slow evaluation out and checks it. Two departures, both where the published code has no
answer: the single-threshold grid uses NumPy's ``linspace`` arithmetic (the published code uses
``torch.linspace``, which can differ in the last bit), and an example where no threshold gives a usable ε
(identical constant confidences, say) gets ε = 0, where the published code stops on an assertion.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

#: the definition's constants
DELTA = 1e-5
EPSILON_CAP = 50.0
PER_UNIT = 100
BUFFER = 2.0
LEFT_THRESHOLDS = int(np.ceil(2 * BUFFER * PER_UNIT))  # 400 left thresholds per right threshold
#: examples scored at once at N ≤ 32 (fewer for larger N: the (examples × right thresholds × 2N candidate left
#: thresholds) arrays stay near 50 MB)
CHUNK = 48


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log p_y − log(1 − p_y) of each row, stable for confident models (float64, as the definition's)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(p))
    correct = p[rows, labels].copy()
    p[rows, labels] = 0
    return np.log(correct + 1e-45) - np.log(p.sum(axis=1) + 1e-45)


def epsilon_table(n_models: int, delta: float = DELTA) -> np.ndarray:
    """ε for every (true positives, false positives) count pair of N models a side: ∞ for perfect separation,
    NaN where exactly one error rate is 0 (discarded), float32 arithmetic as the definition's."""
    rate = np.arange(n_models + 1, dtype=np.float32) / n_models  # rate[k] = k / N as a float32 mean of 0/1
    tp, fp = np.meshgrid(np.arange(n_models + 1), np.arange(n_models + 1), indexing="ij")
    tpr, fnr, fpr, tnr = rate[tp], rate[n_models - tp], rate[fp], rate[n_models - fp]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pairs: discarded below
        value = np.clip(np.nanmax(np.stack([np.log(1 - delta - fpr) - np.log(fnr),
                                            np.log(1 - delta - fnr) - np.log(fpr)]), axis=0), 0, None)
    perfect = (fpr + fnr == 0) & (tpr + tnr == 2)
    table = np.where(perfect, np.inf, np.where(fpr * fnr == 0, np.nan, value))
    return table.astype(np.float64)


def _linspace_at(start: np.ndarray, stop: np.ndarray, num: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``np.linspace(start, stop, num)[k]``, elementwise and exactly (same arithmetic), for 0 ≤ k < num."""
    div = np.maximum(num - 1, 1)
    step = (stop - start) / div
    value = k * step + start
    return np.where((k == num - 1) & (num > 1), stop, value)


def _count_at_or_below(x: np.ndarray, start: np.ndarray, stop: np.ndarray, num: np.ndarray) -> np.ndarray:
    """How many points of the grid ``linspace(start, stop, num)`` are ≤ x, exactly (an estimate, then corrected
    against the grid's own values)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        step = (stop - start) / np.maximum(num - 1, 1)
        guess = np.where(step > 0, np.floor((x - start) / step) + 1, np.where(x >= start, num, 0))
    m = np.clip(np.nan_to_num(guess, nan=0.0), 0, num).astype(np.int64)
    # the estimate is off by at most one either way
    m = m + ((m < num) & (_linspace_at(start, stop, num, np.minimum(m, num - 1)) <= x))
    return m - ((m > 0) & (_linspace_at(start, stop, num, np.maximum(m - 1, 0)) > x))


def _single_pairs(pos: np.ndarray, neg: np.ndarray, reached: np.ndarray) -> None:
    """Mark the (TP, FP) pairs the single-threshold grid reaches: predict positive at or above a threshold."""
    e, n = pos.shape
    both = np.concatenate([pos, neg], axis=1)
    lo, hi = both.min(axis=1), both.max(axis=1)
    num = np.ceil((hi - lo) * PER_UNIT).astype(np.int64)
    counts = _count_at_or_below(both, lo[:, None], hi[:, None], num[:, None])  # #{t_k ≤ x}: x ≥ t_k iff k < it
    candidates = np.concatenate([np.zeros((e, 1), np.int64), counts], axis=1)  # tp, fp change only there
    valid = candidates < num[:, None]
    below = counts[:, None, :] <= candidates[:, :, None]  # [e, candidate, value]: value < t_k at that k
    tp = n - below[:, :, :n].sum(axis=2)
    fp = n - below[:, :, n:].sum(axis=2)
    rows = np.broadcast_to(np.arange(e)[:, None], tp.shape)
    reached[rows[valid], tp[valid], fp[valid]] = True


def _double_pairs(peaky: np.ndarray, other: np.ndarray, width: np.ndarray, reached: np.ndarray) -> None:
    """Mark the (TP, FP) pairs the two-threshold grid reaches: predict the peakier distribution in [l, r]."""
    e, n = peaky.shape
    lo_r = (peaky.min(axis=1) + width) - BUFFER
    hi_r = peaky.max(axis=1) + BUFFER
    num_r = np.ceil((hi_r - lo_r) * PER_UNIT).astype(np.int64)
    most = int(num_r.max())
    i = np.arange(most)[None, :]
    right = _linspace_at(lo_r[:, None], hi_r[:, None], num_r[:, None], np.minimum(i, num_r[:, None] - 1))
    live = i < num_r[:, None]  # [e, rights]
    a_p = (peaky[:, None, :] <= right[:, :, None]).sum(axis=2)
    a_q = (other[:, None, :] <= right[:, :, None]).sum(axis=2)
    start = (right - width[:, None]) - BUFFER
    stop = (right - width[:, None]) + BUFFER
    num_l = np.full_like(num_r[:, None], LEFT_THRESHOLDS)
    # m(x): how many left thresholds are ≤ x, so x < l_j iff j ≥ m(x). Both counts below l_j only change at
    # j = some m(x): the pairs are those at j = 0 and at each distinct m(x) < LEFT_THRESHOLDS (2n + 1 at most
    # per right threshold, instead of all 400 left thresholds)
    m = np.concatenate([_count_at_or_below(values[:, None, :], start[:, :, None], stop[:, :, None],
                                           num_l[:, :, None]) for values in (peaky, other)], axis=2)
    order = np.argsort(m, axis=2, kind="stable")
    sorted_m = np.take_along_axis(m, order, axis=2)
    below_p = np.cumsum(order < n, axis=2, dtype=np.int32)  # peaky values among those with m ≤ sorted_m[k]
    below_q = np.arange(1, 2 * n + 1, dtype=np.int32) - below_p
    last = np.ones_like(sorted_m, dtype=bool)  # the last of each run of equal m: the counts at j = that m
    last[:, :, :-1] = sorted_m[:, :, 1:] != sorted_m[:, :, :-1]
    at_zero = (m[:, :, :n] == 0).sum(axis=2, dtype=np.int32), (m[:, :, n:] == 0).sum(axis=2, dtype=np.int32)
    below_p = np.concatenate([at_zero[0][:, :, None], below_p], axis=2)
    below_q = np.concatenate([at_zero[1][:, :, None], below_q], axis=2)
    used = np.concatenate([np.ones_like(last[:, :, :1]), last & (sorted_m < LEFT_THRESHOLDS)], axis=2)

    side = n + 1
    tp = np.maximum(a_p[:, :, None].astype(np.int32) - below_p, 0)  # #{l ≤ x ≤ r}; 0 when l > r
    fp = np.maximum(a_q[:, :, None].astype(np.int32) - below_q, 0)
    flat = tp * side + fp + (np.arange(e, dtype=np.int32) * side * side)[:, None, None]
    flat = np.where(live[:, :, None] & used, flat, e * side * side)  # unused candidates: a spare slot
    marks = np.zeros(e * side * side + 1, bool)
    marks[flat.ravel()] = True
    reached |= marks[:-1].reshape(e, side, side)


def epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Each forget example's ε from [N models, examples] confidence matrices of both kinds."""
    unlearned, retrained = np.asarray(unlearned, np.float64), np.asarray(retrained, np.float64)
    if unlearned.shape != retrained.shape or unlearned.ndim != 2 or unlearned.shape[0] < 2:
        raise ValueError(f"need two [N ≥ 2 models, examples] matrices of one shape, got {unlearned.shape} and "
                         f"{retrained.shape}")
    n = unlearned.shape[0]
    retrain_positive = np.median(retrained, axis=0) > np.median(unlearned, axis=0)
    pos = np.where(retrain_positive, retrained, unlearned).T  # [examples, models]
    neg = np.where(retrain_positive, unlearned, retrained).T
    table = epsilon_table(n, delta)
    out = np.empty(pos.shape[0])
    chunk = max(1, CHUNK * 32 // max(n, 32))  # the arrays grow with the 2N candidates of each right threshold
    for s in range(0, pos.shape[0], chunk):
        p, q = pos[s:s + chunk], neg[s:s + chunk]
        p_range, q_range = np.ptp(p, axis=1), np.ptp(q, axis=1)
        largest, smallest = np.maximum(p_range, q_range), np.minimum(p_range, q_range)
        with np.errstate(divide="ignore", invalid="ignore"):
            peaky = smallest / largest < 0.01
        swap = p_range >= q_range  # the two-threshold family's "positive" is the peakier distribution
        reached = np.zeros((len(p), n + 1, n + 1), bool)
        _double_pairs(np.where(swap[:, None], q, p), np.where(swap[:, None], p, q),
                      smallest, reached)
        _single_pairs(p, q, reached)
        values = np.where(reached, table[None], np.nan).reshape(len(p), -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an example no threshold measures: 0 below
            best = np.nanmax(values, axis=1)
        best = np.where(np.isnan(best), 0.0, best)  # no usable threshold: nothing tells them apart
        out[s:s + chunk] = np.where(peaky, EPSILON_CAP, best)
    return np.clip(out, 0, EPSILON_CAP)


def bucket_points(n_models: int) -> list[tuple[float, float]]:
    """(bucket start, points) of the score: width 0.5 from 0, worth 1, ½, ¼, … while the bucket ends at or below
    ⌈log(N − 1)⌉, the largest ε N models can measure; an ε beyond the last bucket scores nothing."""
    top = math.ceil(math.log(n_models - 1)) if n_models > 2 else 0
    out, start, points = [], 0.0, 1.0
    while start + 0.5 <= top:
        out.append((start, points))
        start, points = start + 0.5, points / 2
    return out


def score_from_epsilons(eps: np.ndarray, n_models: int) -> float:
    """F: the mean over examples of their ε bucket's points."""
    buckets = bucket_points(n_models)
    if not buckets or len(eps) == 0:
        return 0.0
    ends = np.array([s + 0.5 for s, _ in buckets])
    points = np.array([p for _, p in buckets] + [0.0])
    return float(points[np.searchsorted(ends, eps, side="right")].mean())


def forget_score(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> float:
    """F from [N models, examples] confidence matrices (1: no attack tells them apart on any example)."""
    return score_from_epsilons(epsilons(unlearned, retrained, delta), np.asarray(unlearned).shape[0])


def ceiling(retrained: np.ndarray, seed: int = 0, delta: float = DELTA) -> float:
    """What a perfect unlearner scores with half as many models: F between two disjoint halves of the retrained
    models (each half as large as it can be), since with few models even identical distributions do not score 1."""
    retrained = np.asarray(retrained, np.float64)
    order = np.random.default_rng(seed).permutation(retrained.shape[0])
    half = retrained.shape[0] // 2
    return forget_score(retrained[order[:half]], retrained[order[half:2 * half]], delta)


def final_score(forget: float, ra_unlearned: float, ra_retrained: float, ta_unlearned: float,
                ta_retrained: float) -> float:
    """The competition's final score: F × (RA_u / RA_r) × (TA_u / TA_r)."""
    return forget * (ra_unlearned / ra_retrained) * (ta_unlearned / ta_retrained)


__all__ = ["DELTA", "EPSILON_CAP", "bucket_points", "ceiling", "epsilon_table", "epsilons", "final_score",
           "forget_score", "logit_scaled_confidence", "score_from_epsilons"]
