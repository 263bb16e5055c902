"""Retrain: the gold standard. Train on D_r alone with the original recipe, from where the original started.

A model trained from scratch is re-initialised (``init="random"``); a
fine-tune of a pre-trained checkpoint is retrained from that checkpoint with a
new head, which the caller hands over as the model (``init="given"``, see
:mod:`hf_unlearn.reference`): the method itself never loads anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..data import PixelNormalizer, Split
from ..engine import Engine
from ..errors import UnlearnError
from .base import BaseSettings, Method, MethodContext, ce, doc, finish


@dataclass
class RetrainSettings(BaseSettings):
    epochs: int = doc(30, "epochs of the original training recipe")
    lr: float = doc(0.05, "learning rate of the original recipe")
    lr_schedule: str = doc("cosine", "the original recipe's schedule")
    bn_policy: str = doc("train", "BatchNorm statistics are learned from scratch")
    augment: str = doc("none", "the original recipe's augmentation (flip_crop for CIFAR)")
    init: str = doc("random", "random: re-initialise the model; given: train the model handed over (a pre-trained "
                    "base with a new head; set by retrain_from, not by hand)", choices=("random", "given"))

    def check(self) -> None:
        super().check()
        if self.init not in ("random", "given"):
            raise UnlearnError(f"retrain setting init must be random or given, got '{self.init}'")


def reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """A fresh model of the same architecture and labels, drawn with ``seed``."""
    from accelerate.utils import set_seed
    from transformers import AutoModelForImageClassification

    set_seed(seed)
    return AutoModelForImageClassification.from_config(model.config)


def fit_classifier(engine: Engine, model: nn.Module, split: Split, normalizer: PixelNormalizer,
                   settings: BaseSettings, seed: int, phase: str) -> list[float]:
    """Supervised training with cross-entropy: the original recipe (originals and Retrain share it)."""
    return engine.train(model, lambda m, b, _: ce(m, b["train"]), settings, normalizer,
                        primary=("train", split), seed=seed, phase=phase)


def run(ctx: MethodContext, settings: RetrainSettings) -> nn.Module:
    if settings.init == "random":
        ctx.model = reinitialise(ctx.model, ctx.seed).to(ctx.engine.device)
    fit_classifier(ctx.engine, ctx.model, ctx.data.retain, ctx.data.normalizer, settings, ctx.seed, "retrain")
    return finish(ctx, settings)


METHOD = Method(
    name="retrain",
    title="Retrain",
    summary="Re-initialise and train on the retain set only: the gold standard every method is measured against.",
    settings_cls=RetrainSettings,
    run=run,
)
