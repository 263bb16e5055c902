"""Evaluate one model on a run's splits: logits once per split, then every registered metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ..data import UnlearnData
from ..engine import Engine
from ..errors import UnlearnError
from .outputs import LOGITS_BUDGET, EvalOutputs, SplitOutputs
from .registry import compute_all


def model_outputs(engine: Engine, model: nn.Module, data: UnlearnData, seed: int = 0) -> EvalOutputs:
    """Whole-split logits in eval mode: forget, retain and the full test split (the test rule's rows are a view)."""
    norm = data.normalizer

    def outputs(split: Any) -> SplitOutputs:
        logits = engine.predict(model, split, norm).numpy()
        if not np.isfinite(logits).all():  # metrics of NaN outputs are meaningless (and the MIA's SVC refuses them)
            raise UnlearnError("a model's outputs are not finite (NaN or inf): an edited or retrained model whose "
                               "training diverged; lower its learning rate or take fewer epochs")
        out = SplitOutputs.from_logits(logits, split.labels.cpu().numpy())
        if out.logits.nbytes > LOGITS_BUDGET:
            out.release_logits()
        return out

    test_all = outputs(data.test_all)
    splits = {"forget": outputs(data.forget), "retain": outputs(data.retain), "test_all": test_all,
              "test": test_all.subset(data.test_rows)}
    if data.test_forget_rows is not None:
        splits["test_forget"] = test_all.subset(data.test_forget_rows)
    return EvalOutputs(splits, data.num_classes, seed)


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
