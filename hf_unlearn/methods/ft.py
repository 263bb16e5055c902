"""FT: fine-tune on the retain set (catastrophic forgetting by continued training)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..engine import ParamMask
from ..search import EPOCHS, LR
from .base import BaseSettings, Method, MethodContext, ce, doc, finish


@dataclass
class FTSettings(BaseSettings):
    epochs: int = doc(5, "passes over the retain set", search=EPOCHS)
    lr: float = doc(0.01, "learning rate", search=LR)


def run_finetune(ctx: MethodContext, settings: BaseSettings, mask: ParamMask | None = None,
                 phase: str = "ft") -> nn.Module:
    """CE on the retain set, optionally restricted to the weights a mask lets change (FT, RBM's ft objective)."""
    ctx.engine.train(ctx.model, lambda m, b, _: ce(m, b["retain"]), settings, ctx.data.normalizer,
                     primary=("retain", ctx.data.retain_train), mask=mask, seed=ctx.seed, phase=phase)
    return finish(ctx, settings)


def run(ctx: MethodContext, settings: FTSettings) -> nn.Module:
    return run_finetune(ctx, settings)


METHOD = Method(
    name="ft",
    title="FT (fine-tune)",
    summary="Train on the retain set; in over-parameterised models it fits D_r yet forgets little.",
    settings_cls=FTSettings,
    run=run,
)
