"""RBM: Retention-Based Masking (Ding et al., "Understanding Fine-tuning in Approximate Unlearning", TMLR 2025).

In the linear over-parameterised model, the weights the retain data do not
use are exactly where the forget data's influence lives, and fine-tuning
cannot reach them. RBM builds the mask from the data to *keep*: M_r = top-ρ
of the retain saliency (true-class-logit gradients by default, which do not
vanish at an interpolating model), keeps M_r bit-identical, optionally
shrinks the complement by (1 − α) (α = 1 is the linear case's removal), and
unlearns on the complement only with the same RL objective as SalUn (or FT).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UnlearnError
from ..search import EPOCHS, LR, Choice, Float
from .base import Method, MethodContext, doc
from .ft import run_finetune
from .masked import MaskSettings, keep_mask_on, saliency_mask
from .rl import run_relabel


@dataclass
class RBMSettings(MaskSettings):
    epochs: int = doc(5, "passes of the unlearning objective", search=EPOCHS)
    lr: float = doc(0.01, "learning rate", search=LR)
    rho: float = doc(0.5, "ρ_r: fraction of weights (highest retain saliency) kept bit-identical",
                      search=Float(0.1, 0.95))
    saliency: str = doc("logit", "retain saliency: 'logit' (|∇ z_y|, the linear case's x_j) or 'loss'")
    saliency_reduce: str = doc("sum_of_abs", "Σ_batches |∇ Σ_B z_y| (reference) or abs_of_sum")
    reset_alpha: float = doc(0.5, "α: scale the unkept weights by (1 − α) before training (1 = remove them)",
                              search=Float(0.0, 1.0))
    objective: str = doc("rl", "rl: random labels on D_f + CE on D_r (as SalUn); ft: CE on D_r only",
                           search=Choice(("rl", "ft")))

    def check(self) -> None:
        super().check()
        if not 0.0 <= self.reset_alpha <= 1.0:
            raise UnlearnError(f"reset_alpha must be in [0, 1], got {self.reset_alpha}")
        if self.objective not in ("rl", "ft"):
            raise UnlearnError(f"objective must be rl or ft, got '{self.objective}'")


def run(ctx: MethodContext, settings: RBMSettings) -> nn.Module:
    keep = saliency_mask(ctx, settings, "retain")
    free = keep.complement()
    engine_mask = free.trainable(ctx.model)
    if settings.reset_alpha > 0:
        with torch.no_grad():
            for n, p in ctx.model.named_parameters():
                if n in engine_mask:
                    p.mul_(torch.where(engine_mask[n], 1.0 - settings.reset_alpha, 1.0).to(p.dtype))
    objective = run_relabel if settings.objective == "rl" else run_finetune
    objective(ctx, settings, mask=engine_mask, phase="rbm")
    return keep_mask_on(ctx, keep)


METHOD = Method(
    name="rbm",
    title="RBM (Retention-Based Masking)",
    summary="Keep the weights the retain data rely on bit-identical; unlearn with the rest.",
    settings_cls=RBMSettings,
    run=run,
)
