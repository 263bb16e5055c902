"""What SalUn and RBM share: mask settings, building or loading the mask, masked training."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import UnlearnError
from .base import BaseSettings, MethodContext, doc
from .masks import REDUCTIONS, SALIENCY_KINDS, SCOPES, WeightMask, build_mask, check_rho, parse_maskable


@dataclass
class MaskSettings(BaseSettings):
    rho: float = doc(0.5, "ρ: fraction of maskable entries the saliency mask selects (top-ρ)")
    saliency: str = doc("loss", "saliency of each weight: 'loss' (|∇ CE|) or 'logit' (|∇ true-class logit|)")
    saliency_reduce: str = doc("abs_of_sum", "abs_of_sum: |Σ_batches g|; sum_of_abs: Σ_batches |g|")
    saliency_samples: int = doc(0, "saliency on a seeded sample of this many rows (0 = the whole set)")
    scope: str = doc("global", "rank saliency over all tensors together (global) or within each tensor (layer)")
    maskable: str = doc("all", "tensor kinds a mask may select: 'all' or a comma list of weight, bias, norm")
    mask_path: str = doc("", "load this safetensors mask instead of computing one")

    def check(self) -> None:
        super().check()
        check_rho(self.rho)
        parse_maskable(self.maskable)
        if self.saliency not in SALIENCY_KINDS:
            raise UnlearnError(f"saliency must be one of {', '.join(SALIENCY_KINDS)}, got '{self.saliency}'")
        if self.saliency_reduce not in REDUCTIONS:
            raise UnlearnError(f"saliency_reduce must be one of {', '.join(REDUCTIONS)}")
        if self.scope not in SCOPES:
            raise UnlearnError(f"scope must be global or layer, got '{self.scope}'")
        if self.saliency_samples < 0:
            raise UnlearnError(f"saliency_samples must be 0 (whole set) or positive, got {self.saliency_samples}")


def saliency_mask(ctx: MethodContext, settings: MaskSettings, source: str) -> WeightMask:
    """The top-ρ saliency mask of ``source`` ('forget' or 'retain') at the original weights."""
    if settings.mask_path:
        mask = WeightMask.load(settings.mask_path, ctx.model)
        if mask.meta.get("source") not in (None, source):
            raise UnlearnError(f"mask file '{settings.mask_path}' was built from the {mask.meta['source']} set, "
                               f"this method needs one from the {source} set")
        return mask
    split = ctx.data.forget if source == "forget" else ctx.data.retain_train
    return build_mask(ctx.engine, ctx.model, split, ctx.data.normalizer, source=source, rho=settings.rho,
                      kind=settings.saliency, reduce=settings.saliency_reduce, scope=settings.scope,
                      maskable=settings.maskable, sample=settings.saliency_samples,
                      batch_size=max(settings.batch_size, 128), seed=ctx.seed)


def keep_mask_on(ctx: MethodContext, mask: WeightMask) -> nn.Module:
    """Record the mask the method used, for the report and the saved checkpoint."""
    ctx.artifacts["mask"] = mask
    return ctx.model
