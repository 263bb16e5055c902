"""The metric registry: every metric declared once, and everything that lists metrics derived from it.

A :class:`Metric` says what it is called, what it means, which way is
better, which outputs it reads, whether it enters Avg.Gap, how it goes into
a model card's ``model-index``, and how it is computed: from one model's
evaluation (:class:`~hf_unlearn.metrics.outputs.EvalOutputs`, scope ``model``)
or from an audit's N unlearned and N retrained models (scope ``audit``: the
forgetting-quality score needs the distributions across models, which no
single evaluation has). The report JSON, the
markdown tables, the model card, the app's table, the ``evaluate`` module,
:func:`avg_gap` and the benchmark scripts' tables all iterate this registry,
so registering a metric (:func:`register`) is the whole of adding one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import Registry
from .outputs import EvalOutputs, MissingOutputs

#: "higher" / "lower" is better, or "retrain": the closer to the Retrain reference the better
DIRECTIONS = ("higher", "lower", "retrain")
#: the splits a metric may read (``reference``: the Retrain reference's outputs, in ``outputs.reference``)
READABLE = ("forget", "retain", "test", "test_all", "test_forget", "reference")
#: what a metric is computed from: one model's evaluation, or an audit of many models of each kind
SCOPES = ("model", "audit")


@dataclass(frozen=True)
class CardEntry:
    """Where a metric goes in a model card's ``model-index``: the dataset split, the metric type and its name."""

    split: str
    type: str
    name: str


@dataclass(frozen=True)
class Metric:
    """One metric: its declaration and its compute function (a value in percent, a list, or None)."""

    key: str
    label: str
    meaning: str
    direction: str
    reads: tuple[str, ...]
    compute: Callable[[EvalOutputs], Any]
    in_gap: bool = False
    card: CardEntry | None = None
    #: a column of the metrics tables (False for values that are not one number, e.g. per-class lists)
    table: bool = True
    #: a column of the compact tables (benchmarks, comparisons): the field's headline metrics
    compact: bool = False
    #: "model": ``compute`` takes one model's ``EvalOutputs``; "audit": an audit's ``AuditOutputs``
    scope: str = "model"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric '{self.key}': direction must be one of {DIRECTIONS}, got '{self.direction}'")
        if self.scope not in SCOPES:
            raise ValueError(f"metric '{self.key}': scope must be one of {SCOPES}, got '{self.scope}'")
        unknown = set(self.reads) - set(READABLE)
        if unknown:
            raise ValueError(f"metric '{self.key}' reads {sorted(unknown)}; it may read {READABLE}")

    def value(self, outputs: EvalOutputs) -> Any:
        """The metric on ``outputs``, or None when they lack what it reads (e.g. no reference, not class-wise)."""
        if not all(outputs.has(name) for name in self.reads):
            return None
        try:
            return self.compute(outputs)
        except MissingOutputs:
            return None


_METRICS: Registry[Metric] = Registry("metric", lambda m: m.key)


def register(metric: Metric) -> Metric:
    """Add a metric (after the built-in ones, in registration order; a key registered again is replaced)."""
    return _METRICS.register(metric)


def unregister(key: str) -> None:
    _METRICS.unregister(key)


def all_metrics() -> list[Metric]:
    return _METRICS.items()


def get_metric(key: str) -> Metric:
    return _METRICS.get(key)


def table_metrics(compact: bool = False) -> list[Metric]:
    """The metrics that are table columns (only the headline ones with ``compact``), in registry order."""
    return [m for m in _METRICS.items() if m.scope == "model" and m.table and (m.compact or not compact)]


def gap_metrics() -> list[Metric]:
    return [m for m in _METRICS.items() if m.scope == "model" and m.in_gap]


def audit_metrics() -> list[Metric]:
    """The metrics computed from an audit's many models (the forgetting-quality score and its companions)."""
    return [m for m in _METRICS.items() if m.scope == "audit"]


def card_metrics() -> list[Metric]:
    return [m for m in _METRICS.items() if m.card is not None]


def compute_all(outputs: EvalOutputs) -> dict[str, Any]:
    """Every registered metric of one model, keyed as in the report (None where it does not apply)."""
    return {m.key: m.value(outputs) for m in _METRICS.items() if m.scope == "model"}


def avg_gap(metrics: Mapping[str, Any], reference: Mapping[str, Any]) -> float:
    """Mean |metric − reference| over the metrics that enter Avg.Gap (UA, RA, TA, MIA-efficacy): lower is closer.

    NaN when one of them is missing on either side (say, a reference report written before a gap metric was
    registered): the mean over fewer metrics would be another quantity under the same name.
    """
    pairs = [(metrics.get(m.key), reference.get(m.key)) for m in gap_metrics()]
    if not pairs or any(a is None or b is None for a, b in pairs):
        return float("nan")
    return float(np.mean([abs(float(a) - float(b)) for a, b in pairs]))


def shown_columns(rows: Iterable[Mapping[str, Any] | None], compact: bool = False) -> list[Metric]:
    """The table metrics that have a value in at least one row (forget-class test accuracy only when class-wise)."""
    rows = [r for r in rows if r]
    return [m for m in table_metrics(compact) if any(r.get(m.key) is not None for r in rows)]


def fmt(value: Any) -> str:
    """A table cell: two decimals, '–' for a missing or undefined value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2f}"


def fmt_pm(mean: Any, std: Any = None) -> str:
    """A table cell over several seeds: "mean ± std" (two decimals), the mean alone without a spread."""
    if std is None or mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std)}"


__all__ = ["CardEntry", "DIRECTIONS", "Metric", "SCOPES", "all_metrics", "audit_metrics", "avg_gap",
           "card_metrics", "compute_all", "fmt", "fmt_pm", "gap_metrics", "get_metric", "register", "shown_columns",
           "table_metrics", "unregister"]
