"""Unlearning metrics: the registry, its built-in metrics (one module per family) and the ``evaluate`` module."""

from __future__ import annotations

from pathlib import Path

from . import accuracy, forgetting, mia, per_class
from .outputs import EvalOutputs, SplitOutputs
from .registry import (
    CardEntry,
    Metric,
    all_metrics,
    audit_metrics,
    avg_gap,
    card_metrics,
    compute_all,
    gap_metrics,
    get_metric,
    register,
    table_metrics,
    unregister,
)

for _module in (accuracy, mia, per_class, forgetting):  # the report's order of metrics
    for _metric in _module.METRICS:
        register(_metric)

#: Pass this to ``evaluate.load`` to get the metrics as an ``evaluate.Metric`` (offline).
EVALUATE_MODULE_PATH = str(Path(__file__).parent / "unlearning_metrics")

__all__ = ["CardEntry", "EVALUATE_MODULE_PATH", "EvalOutputs", "Metric", "SplitOutputs", "all_metrics",
           "audit_metrics", "avg_gap", "card_metrics", "compute_all", "gap_metrics", "get_metric", "register",
           "table_metrics", "unregister"]
