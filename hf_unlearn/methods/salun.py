"""SalUn: forgetting-based masking (Fan et al., ICLR 2024).

Mask M_f = top-ρ of |∇_θ CE(θ_o; D_f)| ranked over all weights; the RL
objective then changes only the masked weights (exact restore in the engine).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..search import EPOCHS, LR, Float
from .base import Method, MethodContext, doc
from .masked import MaskSettings, keep_mask_on, saliency_mask
from .rl import run_relabel


@dataclass
class SalUnSettings(MaskSettings):
    epochs: int = doc(5, "passes over the forget set, each step paired with a retain batch (RL objective)",
                     search=EPOCHS)
    lr: float = doc(0.01, "learning rate", search=LR)
    rho: float = doc(0.5, "ρ: fraction of weights (highest forget saliency) allowed to change",
                      search=Float(0.05, 0.9))


def run(ctx: MethodContext, settings: SalUnSettings) -> nn.Module:
    mask = saliency_mask(ctx, settings, "forget")
    run_relabel(ctx, settings, mask=mask.trainable(ctx.model), phase="salun")
    return keep_mask_on(ctx, mask)


METHOD = Method(
    name="salun",
    title="SalUn",
    summary="Random-label unlearning restricted to the weights most salient for the forget set.",
    settings_cls=SalUnSettings,
    run=run,
)
