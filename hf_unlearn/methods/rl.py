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


def relabel_loss(num_classes: int, seed: int):
    """CE(D_f with random wrong labels) + CE(D_r): the objective of RL, SalUn and RBM."""
    gen = torch.Generator().manual_seed(seed + 7919)

    def loss(model: nn.Module, batch, _progress: float) -> torch.Tensor:
        xf, yf = batch["forget"]
        return ce(model, (xf, random_other_labels(yf, num_classes, gen))) + ce(model, batch["retain"])

    return loss


def run_relabel(ctx: MethodContext, settings: BaseSettings, mask: ParamMask | None = None,
                phase: str = "rl") -> nn.Module:
    """The RL objective, optionally restricted to the weights a mask lets change."""
    ctx.engine.train(ctx.model, relabel_loss(ctx.data.num_classes, ctx.seed), settings, ctx.data.normalizer,
                     primary=("forget", ctx.data.forget), secondary={"retain": ctx.data.retain_train},
                     mask=mask, seed=ctx.seed, phase=phase)
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
