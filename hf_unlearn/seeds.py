"""Several seeds as one result: each metric's mean ± standard deviation, each seed's values kept.

A single unlearning run is noisy (the method's batches, the Retrain it is
measured against and the MIA's draws all depend on the seed), so the field
reports means over seeds with their spread. Each seed is measured against its
own Retrain reference; Avg.Gap is the mean of the seeds' Avg.Gaps, not the gap
of the means. The spread is the sample standard deviation (``ddof=1``): with
three seeds the population formula would understate it by a fifth.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import UnlearnError
from .report import UnlearnReport


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation over the seeds (std 0 for one seed).

    None when no seed has the value; NaN when some seeds have it and others not: a mean over the seeds that
    happened to produce a number would look like a mean over all of them.
    """
    if all(v is None for v in values):
        return None, None
    vals = [float("nan") if v is None else float(v) for v in values]
    if not all(math.isfinite(v) for v in vals):
        return float("nan"), float("nan")
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def _combine_rows(rows: Sequence[dict[str, Any] | None]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """One model's metrics over seeds: the mean and std of each number (element-wise for per-class lists)."""
    present = [r for r in rows if r]
    if not present:
        return None, None
    mean: dict[str, Any] = {}
    std: dict[str, Any] = {}
    for key in present[0]:
        values = [r.get(key) for r in present]
        if all(isinstance(v, (list, tuple)) for v in values):
            pairs = [mean_std(col) for col in zip(*values, strict=True)]
            mean[key], std[key] = [p[0] for p in pairs], [p[1] for p in pairs]
        elif all(isinstance(v, (int, float)) or v is None for v in values):
            mean[key], std[key] = mean_std(values)
        else:
            mean[key], std[key] = values[0], None
    return mean, std


def combine_seeds(reports: Sequence[UnlearnReport]) -> UnlearnReport:
    """One report over several seeds of the same method and request (the first seed's record otherwise)."""
    if not reports:
        raise UnlearnError("no seeds to combine")
    first = reports[0]
    for r in reports[1:]:
        if r.method != first.method or r.forget.get("forget_ids_sha256") != first.forget.get("forget_ids_sha256"):
            raise UnlearnError("only runs of one method on one request can be combined over seeds")
    names = list(first.metrics)
    metrics, metrics_std = {}, {}
    for name in names:
        metrics[name], metrics_std[name] = _combine_rows([r.metrics.get(name) for r in reports])
    gaps = gaps_std = None
    if all(r.avg_gap for r in reports):
        pairs = {k: mean_std([r.avg_gap.get(k) for r in reports]) for k in first.avg_gap}
        gaps, gaps_std = {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items()}
    rte, rte_std = mean_std([r.rte_s for r in reports])
    retrain_s = mean_std([r.retrain_s for r in reports])[0]
    per_seed = [{"seed": r.seed, "metrics": r.metrics, "avg_gap": r.avg_gap, "rte_s": r.rte_s,
                 "retrain_s": r.retrain_s, "retrain": r.retrain} for r in reports]
    retrain = None
    if first.retrain is not None:
        retrain = {**first.retrain, "cached": [bool((r.retrain or {}).get("cached")) for r in reports],
                   "seconds": retrain_s}
    return dataclasses.replace(first, metrics=metrics, metrics_std=metrics_std, avg_gap=gaps, avg_gap_std=gaps_std,
                               rte_s=rte or 0.0, rte_s_std=rte_std, retrain_s=retrain_s, retrain=retrain,
                               seeds=[r.seed for r in reports], per_seed=per_seed)
