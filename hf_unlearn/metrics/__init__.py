"""Unlearning metrics: UA, RA, TA, MIA-efficacy, MIA-loss, Avg.Gap (see ``core``)."""

from __future__ import annotations

from pathlib import Path

from .core import GAP_METRICS, accuracy, avg_gap, mia_efficacy, mia_loss, per_class_accuracy

#: Pass this to ``evaluate.load`` to get the metrics as an ``evaluate.Metric`` (offline).
EVALUATE_MODULE_PATH = str(Path(__file__).parent / "unlearning_metrics")

__all__ = ["EVALUATE_MODULE_PATH", "GAP_METRICS", "accuracy", "avg_gap", "mia_efficacy", "mia_loss",
           "per_class_accuracy"]
