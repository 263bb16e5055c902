"""NegGrad+: descend on the retain loss while ascending on the forget loss."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import UnlearnError
from ..search import EPOCHS, LR, Float
from .base import BaseSettings, Method, MethodContext, ce, doc, finish


@dataclass
class NegGradSettings(BaseSettings):
    epochs: int = doc(5, "passes over the retain set, each step paired with a forget batch",
                     search=EPOCHS)
    lr: float = doc(0.01, "learning rate", search=LR)
    alpha: float = doc(0.05, "λ in CE(B_r) − λ·CE(B_f): weight of the forget ascent",
                        search=Float(1e-3, 1.0, log=True))
    clip_grad: float = doc(5.0, "gradient-norm clip (the ascent term is unbounded)")

    def check(self) -> None:
        super().check()
        if self.alpha < 0:
            raise UnlearnError(f"alpha must not be negative, got {self.alpha}")


def run(ctx: MethodContext, settings: NegGradSettings) -> nn.Module:
    def loss(model, batch, _p):
        return ce(model, batch["retain"]) - settings.alpha * ce(model, batch["forget"])

    ctx.engine.train(ctx.model, loss, settings, ctx.data.normalizer, primary=("retain", ctx.data.retain_train),
                     secondary={"forget": ctx.data.forget}, seed=ctx.seed, phase="neggrad+")
    return finish(ctx, settings)


METHOD = Method(
    name="neggrad+",
    title="NegGrad+",
    summary="CE on retain batches minus λ·CE on forget batches.",
    settings_cls=NegGradSettings,
    run=run,
)
