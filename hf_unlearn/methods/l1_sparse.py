"""ℓ1-sparse: fine-tuning with an ℓ1 penalty whose weight decays linearly to 0 (Unlearn-Sparse)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UnlearnError
from ..search import EPOCHS, LR, Float
from .base import BaseSettings, Method, MethodContext, ce, doc, finish


@dataclass
class L1SparseSettings(BaseSettings):
    epochs: int = doc(5, "passes over the retain set", search=EPOCHS)
    lr: float = doc(0.01, "learning rate", search=LR)
    alpha: float = doc(5e-5, "λ at the start; λ_t falls linearly to 0 over the run",
                        search=Float(1e-6, 1e-3, log=True))

    def check(self) -> None:
        super().check()
        if self.alpha < 0:
            raise UnlearnError(f"alpha must not be negative, got {self.alpha}")


def run(ctx: MethodContext, settings: L1SparseSettings) -> nn.Module:
    params = [p for p in ctx.model.parameters() if p.requires_grad]

    def loss(model, batch, progress: float) -> torch.Tensor:
        l1 = torch.stack([p.abs().sum() for p in params]).sum()
        return ce(model, batch["retain"]) + settings.alpha * (1.0 - progress) * l1

    ctx.engine.train(ctx.model, loss, settings, ctx.data.normalizer, primary=("retain", ctx.data.retain_train),
                     seed=ctx.seed, phase="l1-sparse")
    return finish(ctx, settings)


METHOD = Method(
    name="l1-sparse",
    title="ℓ1-sparse",
    summary="Fine-tune on the retain set with a decaying ℓ1 penalty that prunes what D_r does not need.",
    settings_cls=L1SparseSettings,
    run=run,
)
