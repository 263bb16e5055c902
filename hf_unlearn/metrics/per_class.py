"""Metrics by class: the forgotten classes' test accuracy, and every class's (the per-class plot)."""

from __future__ import annotations

from . import core
from .outputs import EvalOutputs
from .registry import Metric


def _forget_classes(out: EvalOutputs) -> float:
    test = out["test_forget"]
    return core.accuracy(test.predictions, test.labels)


def _each_class(out: EvalOutputs) -> list[float | None]:
    test = out["test_all"]
    return core.per_class_accuracy(test.predictions, test.labels, out.num_classes)


METRICS = (
    Metric("forget_class_test_acc", "forget-class test acc",
           "accuracy on the forgotten classes' test rows (about 0 after class-wise forgetting)", "retrain",
           ("test_forget",), _forget_classes),
    Metric("per_class_test_acc", "per-class test acc", "test accuracy of each class", "higher", ("test_all",),
           _each_class, table=False),
)
