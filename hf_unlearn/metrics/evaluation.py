"""Evaluate one model on a run's splits: logits once per split, then every registered metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ..data import UnlearnData
from ..engine import Engine
from .outputs import EvalOutputs, SplitOutputs
from .registry import compute_all


def model_outputs(engine: Engine, model: nn.Module, data: UnlearnData, seed: int = 0) -> EvalOutputs:
    """Whole-split logits in eval mode: forget, retain and the full test split (the test rule's rows are a view)."""
    norm = data.normalizer

    def outputs(split: Any) -> SplitOutputs:
        return SplitOutputs.from_logits(engine.predict(model, split, norm).numpy(), split.labels.cpu().numpy())

    test_all = outputs(data.test_all)
    splits = {"forget": outputs(data.forget), "retain": outputs(data.retain), "test_all": test_all,
              "test": _rows(test_all, data.test_rows)}
    if data.forget_class_ids:
        in_forget_classes = np.isin(test_all.labels, data.forget_class_ids)
        if in_forget_classes.any():
            splits["test_forget"] = _rows(test_all, np.flatnonzero(in_forget_classes))
    return EvalOutputs(splits, data.num_classes, seed)


def _rows(split: SplitOutputs, rows: np.ndarray) -> SplitOutputs:
    return SplitOutputs.from_logits(split.logits[rows], split.labels[rows])


@dataclass
class Evaluation:
    """A model's metrics (keyed as in the report) and the outputs they came from (the app plots them:
    ``outputs["forget"].true_prob`` is the MIA feature of the forget rows, ``.predictions`` their classes)."""

    metrics: dict[str, Any]
    outputs: EvalOutputs


def evaluate(outputs: EvalOutputs, reference: EvalOutputs | None = None) -> Evaluation:
    """Every registered metric of ``outputs``; metrics that read the Retrain reference see ``reference``."""
    return Evaluation(compute_all(outputs.with_reference(reference)), outputs)


def evaluate_model(engine: Engine, model: nn.Module, data: UnlearnData, seed: int = 0,
                   reference: EvalOutputs | None = None) -> Evaluation:
    """:func:`model_outputs` then :func:`evaluate`."""
    return evaluate(model_outputs(engine, model, data, seed), reference)
