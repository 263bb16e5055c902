"""Accuracy metrics: UA and forget accuracy on D_f, RA on D_r, TA on the test rule's rows."""

from __future__ import annotations

from . import core
from .outputs import SplitOutputs
from .registry import CardEntry, Metric


def _acc(split: SplitOutputs) -> float:
    return core.accuracy(split.predictions, split.labels)


METRICS = (
    Metric("ua", "UA", "unlearning accuracy: 100 − accuracy on the forget set (higher: more of it forgotten)",
           "retrain", ("forget",), lambda o: 100.0 - _acc(o["forget"]), in_gap=True, compact=True,
           card=CardEntry("forget", "unlearning_accuracy", "UA (100 − forget acc)")),
    Metric("forget_acc", "forget acc", "accuracy on the forget set", "retrain", ("forget",),
           lambda o: _acc(o["forget"]), card=CardEntry("forget", "accuracy", "forget accuracy")),
    Metric("ra", "RA", "retain accuracy: accuracy on the training data that was kept", "higher", ("retain",),
           lambda o: _acc(o["retain"]), in_gap=True, compact=True,
           card=CardEntry("retain", "accuracy", "retain accuracy (RA)")),
    Metric("ta", "TA", "test accuracy (for class-wise forgetting: on the remaining classes' test rows)", "higher",
           ("test",), lambda o: _acc(o["test"]), in_gap=True, compact=True,
           card=CardEntry("test", "accuracy", "test accuracy (TA)")),
)

