"""Retrain: the gold standard. Re-initialise and train on D_r alone with the original recipe."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .base import BaseSettings, Method, MethodContext, ce, doc, finish


@dataclass
class RetrainSettings(BaseSettings):
    epochs: int = doc(30, "epochs of the original training recipe")
    lr: float = doc(0.05, "learning rate of the original recipe")
    lr_schedule: str = doc("cosine", "the original recipe's schedule")
    bn_policy: str = doc("train", "BatchNorm statistics are learned from scratch")
    augment: str = doc("none", "the original recipe's augmentation (flip_crop for CIFAR)")


def reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """A fresh model of the same architecture and labels, drawn with ``seed``."""
    from accelerate.utils import set_seed
    from transformers import AutoModelForImageClassification

    set_seed(seed)
    return AutoModelForImageClassification.from_config(model.config)


def train_from_scratch(ctx: MethodContext, settings: RetrainSettings, split_name: str = "retain") -> nn.Module:
    """Train a re-initialised copy of ``ctx.model`` on one set (D_r for Retrain, D for originals)."""
    fresh = reinitialise(ctx.model, ctx.seed).to(ctx.engine.device)
    split = ctx.data.train if split_name == "train" else ctx.data.retain
    ctx.engine.train(fresh, lambda m, b, _: ce(m, b[split_name]), settings, ctx.data.normalizer,
                     primary=(split_name, split), seed=ctx.seed, phase="retrain")
    ctx.model = fresh
    return finish(ctx, settings)


def run(ctx: MethodContext, settings: RetrainSettings) -> nn.Module:
    return train_from_scratch(ctx, settings)


METHOD = Method(
    name="retrain",
    title="Retrain",
    summary="Re-initialise and train on the retain set only: the gold standard every method is measured against.",
    settings_cls=RetrainSettings,
    run=run,
)
