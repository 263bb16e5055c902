"""MinNorm-OG (Block, Mokhtari, Shakkottai, "Machine Unlearning under Overparameterization", NeurIPS 2025).

The unlearned model is the least-norm model that still fits D_r. Around θ_o
that is: shrink θ outside the span G of the retain samples' output
gradients, θ ← θ − λ_reg (θ − P_G θ), which leaves every retain output
unchanged to first order, then take a retain-loss step. λ_reg decays by γ_reg
after each projection; projections stop in the last T_GD epochs and run only
in epochs divisible by T_proj. Each step pairs a forget batch (it only counts
steps, as in the authors' code) with a retain batch.

Unlike the authors' code: G is never built with one backward per column:
``span.OutputSpan`` forms GᵀG and Gᵀθ from one forward and one
backward of the n_pert samples (closed-form per-sample gradients for Linear,
Conv2d and norm layers, vmap for the rest), solves the n_pert × n_pert
system, and gets G c from the same per-layer forms; ``SpanShrinker`` replays
that from CUDA graphs on a GPU. The samples are stratified with at least one
per class present (never an empty G).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...data import Split
from ...errors import UnlearnError
from ...search import EPOCHS, Float, Int
from ..base import BaseSettings, Method, MethodContext, ce, doc, finish
from .span import SpanShrinker


@dataclass
class MinNormSettings(BaseSettings):
    epochs: int = doc(5, "passes over the forget set (forget batches only count steps)", search=EPOCHS)
    lr: float = doc(1e-3, "learning rate of the retain-loss steps", search=Float(1e-5, 1e-2, log=True))
    optimizer: str = doc("adamw", "optimizer of the retain-loss steps (the authors: AdamW)")
    weight_decay: float = doc(0.01, "AdamW weight decay (the authors' default)")
    lambda_reg: float = doc(0.1, "λ_reg = 1/(1+λ) ∈ [0, 1]: share of θ's out-of-span part removed per projection",
                             search=Float(0.0, 1.0))
    gamma_reg: float = doc(0.9, "γ_reg: λ_reg is multiplied by this after every projection",
                            search=Float(0.5, 1.0))
    t_gd: int = doc(1, "T_GD: the last T_GD epochs take retain-loss steps only (no projection)",
                    search=Int(0, 3))
    t_proj: int = doc(1, "T_proj: project only in epochs whose index is divisible by T_proj",
                      search=Int(1, 3))
    n_pert: int = doc(50, "n_pert: retain samples whose output gradients span G (≥ 1 per class present)")
    grad_chunk: int = doc(0, "samples per vmapped backward pass for parameters outside Linear/Conv2d/norm "
                             "layers (a ViT's position embeddings, custom modules); 0 = all n_pert in one, a "
                             "smaller chunk bounds activation memory at some speed")
    cuda_graphs: bool = doc(True, "on a GPU, replay the projection from CUDA graphs after its first call "
                                  "(same numbers; its few hundred small kernels otherwise wait on Python)")
    span_precision: str = doc("float64", "what GᵀG, Gᵀθ and G c are summed in: float64 keeps the retain outputs "
                                         "fixed as the authors' float64 QR does however ill-conditioned G is; "
                                         "float32 is 30-40 % cheaper a step on a CPU (and on GPUs with slow "
                                         "float64) but lets them move up to hundreds of times more",
                              choices=("float64", "float32"))
    bn_policy: str = doc("train", "BatchNorm statistics follow the retain batches (only retain data is forwarded "
                                  "in train mode): the shrink changes activation scales, frozen statistics would "
                                  "mis-normalise them")
    recalibrate_bn: bool = doc(True, "re-estimate BatchNorm statistics on the retain set after unlearning")

    def check(self) -> None:
        super().check()
        if not 0.0 <= self.lambda_reg <= 1.0:
            raise UnlearnError(f"lambda_reg must be in [0, 1] (it is 1/(1+λ)), got {self.lambda_reg}")
        if not 0.0 < self.gamma_reg <= 1.0:
            raise UnlearnError(f"gamma_reg must be in (0, 1], got {self.gamma_reg}")
        if self.n_pert < 1:
            raise UnlearnError(f"n_pert must be at least 1 (G needs a column), got {self.n_pert}")
        if self.t_gd < 0 or self.t_proj < 1:
            raise UnlearnError(f"t_gd must be ≥ 0 and t_proj ≥ 1, got t_gd={self.t_gd}, t_proj={self.t_proj}")
        if self.grad_chunk < 0:
            raise UnlearnError(f"grad_chunk must be 0 (all at once) or positive, got {self.grad_chunk}")
        if self.span_precision not in ("float64", "float32"):
            raise UnlearnError(f"span_precision must be float64 or float32, got '{self.span_precision}'")


def stratified_rows(labels: np.ndarray, classes: np.ndarray, n_pert: int, rng: np.random.Generator) -> np.ndarray:
    """n_pert rows spread evenly over ``classes`` (at least one each; never empty)."""
    classes = np.unique(classes)
    available = [c for c in classes if np.any(labels == c)]
    if not available:
        available = list(np.unique(labels))
    quota = {c: max(1, n_pert // len(available)) for c in available}
    spare = n_pert - sum(quota.values())
    if spare > 0:
        for c in rng.choice(available, size=min(spare, len(available)), replace=False):
            quota[c] += 1
    rows = []
    for c, k in quota.items():
        pool = np.flatnonzero(labels == c)
        rows.append(rng.choice(pool, size=min(k, len(pool)), replace=False))
    return np.sort(np.concatenate(rows))


class Projector:
    """The projection step, with its λ_reg schedule and sample draws."""

    def __init__(self, ctx: MethodContext, settings: MinNormSettings, retain: Split) -> None:
        self.ctx, self.s, self.retain = ctx, settings, retain
        self.labels = retain.labels.cpu().numpy()
        self.lam = settings.lambda_reg
        self.rng = np.random.default_rng(ctx.seed + 101)
        self.projections = 0
        self.params = {n: p for n, p in ctx.model.named_parameters() if p.requires_grad}
        if not self.params:
            raise UnlearnError("the model has no trainable parameters: MinNorm-OG has nothing to project")
        self.shrink = SpanShrinker(ctx.model, self.params, chunk_size=settings.grad_chunk or None,
                                   graphs=settings.cuda_graphs, dtype=getattr(torch, settings.span_precision))

    def active(self, epoch: int) -> bool:
        return epoch < self.s.epochs - self.s.t_gd and epoch % self.s.t_proj == 0

    def __call__(self, model: nn.Module, batch: dict, epoch: int, _step: int) -> None:
        if not self.active(epoch) or self.lam == 0.0:
            return
        classes = batch["retain"][1].cpu().numpy()
        rows = stratified_rows(self.labels, classes, self.s.n_pert, self.rng)
        engine = self.ctx.engine
        x = self.ctx.data.normalizer(self.retain.pixels(torch.as_tensor(rows)).to(engine.device))
        self.shrink(x, self.lam)
        self.lam *= self.s.gamma_reg
        self.projections += 1


def run(ctx: MethodContext, settings: MinNormSettings) -> nn.Module:
    projector = Projector(ctx, settings, ctx.data.retain_train)
    ctx.engine.train(ctx.model, lambda m, b, _: ce(m, b["retain"]), settings, ctx.data.normalizer,
                     primary=("forget", ctx.data.forget), secondary={"retain": ctx.data.retain_train},
                     seed=ctx.seed, phase="minnorm-og", before_step=projector)
    ctx.artifacts["projections"] = projector.projections
    ctx.artifacts["projection_path"] = projector.shrink.path()
    return finish(ctx, settings)


METHOD = Method(
    name="minnorm-og",
    title="MinNorm-OG",
    summary="Shrink the weights orthogonally to the retain outputs' gradients toward the minimum-norm "
            "model that still fits D_r, alternating with retain-loss steps.",
    settings_cls=MinNormSettings,
    run=run,
)
