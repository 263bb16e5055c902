"""RL: random labels on the forget set plus the usual loss on the retain set."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import ParamMask, forward_logits
from ..search import EPOCHS, LR
from .base import BaseSettings, Method, MethodContext, ce, doc, finish, random_other_labels


@dataclass
class RLSettings(BaseSettings):
    epochs: int = doc(5, "passes over the forget set, each step paired with a retain batch", search=EPOCHS)
    lr: float = doc(0.01, "learning rate", search=LR)


def relabel(num_classes: int, seed: int):
    """Give each step's forget batch random wrong labels, drawn for the whole batch.

    Drawn before the engine splits the batch across processes, so every
    process sees the labels a single process would have drawn.
    """
    gens: dict[torch.device, torch.Generator] = {}

    def prepare(batch):
        xf, yf = batch["forget"]
        if yf.device not in gens:  # one per device, same seed on every process: the same labels everywhere
            gens[yf.device] = torch.Generator(device=yf.device).manual_seed(seed + 7919)
        return {**batch, "forget": (xf, random_other_labels(yf, num_classes, gens[yf.device]))}

    return prepare


def relabel_loss(model: nn.Module, batch, _progress: float) -> torch.Tensor:
    """CE(D_f with random wrong labels) + CE(D_r): the objective of RL, SalUn and RBM."""
    return ce(model, batch["forget"]) + ce(model, batch["retain"])


def fused_relabel_loss(model: nn.Module, batch, _progress: float) -> torch.Tensor:
    """``relabel_loss`` from one forward of both batches stacked: the same loss and gradient when no layer
    couples a batch's samples (BatchNorm frozen), at half the kernel launches, which set the step time on a
    GPU at these batch sizes."""
    (xf, yf), (xr, yr) = batch["forget"], batch["retain"]
    losses = F.cross_entropy(forward_logits(model, torch.cat([xf, xr])).float(), torch.cat([yf, yr]),
                             reduction="none")
    return losses[:len(xf)].mean() + losses[len(xf):].mean()


def run_relabel(ctx: MethodContext, settings: BaseSettings, mask: ParamMask | None = None,
                phase: str = "rl") -> nn.Module:
    """The RL objective, optionally restricted to the weights a mask lets change."""
    loss = fused_relabel_loss if settings.bn_policy == "freeze" else relabel_loss  # train-mode BN: batch stats
    ctx.engine.train(ctx.model, loss, settings, ctx.data.normalizer,
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
