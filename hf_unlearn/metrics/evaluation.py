"""Evaluate one model on a run's splits: logits once per split, then every metric."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from torch import nn

from ..data import UnlearnData
from ..engine import Engine
from . import core


@dataclass
class ModelMetrics:
    """The metrics of one model; ``forget_class_test_acc`` only for class-wise forgetting."""

    ua: float
    forget_acc: float
    ra: float
    ta: float
    mia_efficacy: float
    mia_loss: float
    forget_class_test_acc: float | None
    per_class_test_acc: list[float | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evaluation:
    """Metrics plus the per-row arrays the app plots (confidence histograms, image grids)."""

    metrics: ModelMetrics
    forget_pred: np.ndarray
    forget_prob: np.ndarray
    retain_prob: np.ndarray
    test_prob: np.ndarray


def evaluate_model(engine: Engine, model: nn.Module, data: UnlearnData, seed: int = 0) -> Evaluation:
    """Whole-split evaluation in eval mode: forget, retain and the full test split."""
    norm = data.normalizer
    f_logits = engine.predict(model, data.forget, norm).numpy()
    r_logits = engine.predict(model, data.retain, norm).numpy()
    t_logits_all = engine.predict(model, data.test_all, norm).numpy()
    f_y, r_y, t_y_all = (s.labels.cpu().numpy() for s in (data.forget, data.retain, data.test_all))
    t_logits, t_y = t_logits_all[data.test_rows], t_y_all[data.test_rows]

    f_pred, t_pred_all = f_logits.argmax(1), t_logits_all.argmax(1)
    forget_acc = core.accuracy(f_pred, f_y)
    f_prob = core.softmax_true_prob(f_logits, f_y)
    r_prob = core.softmax_true_prob(r_logits, r_y)
    t_prob = core.softmax_true_prob(t_logits, t_y)
    fc_acc = None
    if data.forget_class_ids:
        in_fc = np.isin(t_y_all, data.forget_class_ids)
        fc_acc = core.accuracy(t_pred_all[in_fc], t_y_all[in_fc]) if in_fc.any() else None
    metrics = ModelMetrics(
        ua=100.0 - forget_acc,
        forget_acc=forget_acc,
        ra=core.accuracy(r_logits.argmax(1), r_y),
        ta=core.accuracy(t_logits.argmax(1), t_y),
        mia_efficacy=core.mia_efficacy(r_prob, t_prob, f_prob, seed=seed),
        mia_loss=core.mia_loss(core.cross_entropy(f_logits, f_y), f_y,
                               core.cross_entropy(t_logits_all, t_y_all), t_y_all, seed=seed),
        forget_class_test_acc=fc_acc,
        per_class_test_acc=core.per_class_accuracy(t_pred_all, t_y_all, data.num_classes),
    )
    return Evaluation(metrics, f_pred, f_prob, r_prob, t_prob)
