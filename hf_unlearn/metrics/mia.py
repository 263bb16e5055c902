"""Membership-inference metrics: SalUn's MIA-efficacy and the NeurIPS 2023 challenge kit's MIA-loss."""

from __future__ import annotations

from . import core
from .outputs import EvalOutputs
from .registry import CardEntry, Metric


def _efficacy(out: EvalOutputs) -> float:
    return core.mia_efficacy(out["retain"].true_prob, out["test"].true_prob, out["forget"].true_prob, seed=out.seed)


def _loss_attack(out: EvalOutputs) -> float:
    forget, test = out["forget"], out["test_all"]
    return core.mia_loss(forget.loss, forget.labels, test.loss, test.labels, seed=out.seed)


METRICS = (
    Metric("mia_efficacy", "MIA-efficacy",
           "share of the forget set a membership-inference attack calls \"not a member\" (higher: it looks unseen)",
           "retrain", ("forget", "retain", "test"), _efficacy, in_gap=True, compact=True,
           card=CardEntry("forget", "mia_efficacy", "MIA-efficacy")),
    Metric("mia_loss", "MIA-loss",
           "accuracy of a loss-based attack telling the forget set from test data (about 50: it cannot)",
           "retrain", ("forget", "test_all"), _loss_attack, compact=True,
           card=CardEntry("forget", "mia_loss", "MIA-loss")),
)
