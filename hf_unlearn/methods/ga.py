"""GA: gradient ascent on the forget set (maximise its cross-entropy)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..search import EPOCHS, Float
from .base import BaseSettings, Method, MethodContext, ce, doc, finish


@dataclass
class GASettings(BaseSettings):
    epochs: int = doc(5, "passes over the forget set", search=EPOCHS)
    lr: float = doc(1e-4, "learning rate (ascent diverges quickly: keep it small)",
                    search=Float(1e-6, 1e-2, log=True))


def run(ctx: MethodContext, settings: GASettings) -> nn.Module:
    ctx.engine.train(ctx.model, lambda m, b, _: -ce(m, b["forget"]), settings, ctx.data.normalizer,
                     primary=("forget", ctx.data.forget), seed=ctx.seed, phase="ga")
    return finish(ctx, settings)


METHOD = Method(
    name="ga",
    title="GA (gradient ascent)",
    summary="Maximise the loss on the forget set; unbounded, so it over-forgets without care.",
    settings_cls=GASettings,
    run=run,
)
