"""RL: random labels on the forget set plus the usual loss on the retain set."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..engine import ParamMask
from .base import BaseSettings, Method, MethodContext, ce, doc, finish, random_other_labels


@dataclass
class RLSettings(BaseSettings):
    epochs: int = doc(5, "passes over the forget set, each step paired with a retain batch")
    lr: float = doc(0.01, "learning rate")


def relabel(num_classes: int, seed: int):
    """Give each step's forget batch random wrong labels, drawn for the whole batch.

    Drawn before the engine splits the batch across processes, so every
    process sees the labels a single process would have drawn.
    """
    gen = torch.Generator().manual_seed(seed + 7919)

    def prepare(batch):
        xf, yf = batch["forget"]
        return {**batch, "forget": (xf, random_other_labels(yf, num_classes, gen))}

    return prepare


def relabel_loss(model: nn.Module, batch, _progress: float) -> torch.Tensor:
    """CE(D_f with random wrong labels) + CE(D_r): the objective of RL, SalUn and RBM."""
    return ce(model, batch["forget"]) + ce(model, batch["retain"])


def run_relabel(ctx: MethodContext, settings: BaseSettings, mask: ParamMask | None = None,
                phase: str = "rl") -> nn.Module:
    """The RL objective, optionally restricted to the weights a mask lets change."""
    ctx.engine.train(ctx.model, relabel_loss, settings, ctx.data.normalizer,
                     primary=("forget", ctx.data.forget), secondary={"retain": ctx.data.retain_train},
                     mask=mask, seed=ctx.seed, phase=phase, prepare=relabel(ctx.data.num_classes, ctx.seed))
    return finish(ctx, settings)


def run(ctx: MethodContext, settings: RLSettings) -> nn.Module:
    return run_relabel(ctx, settings)


METHOD = Method(
    name="rl",
    title="RL (random labels)",
    summary="Train the forget set toward random wrong labels while keeping the retain loss low.",
    settings_cls=RLSettings,
    run=run,
)
