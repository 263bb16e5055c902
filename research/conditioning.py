"""Float32 models with an ill-conditioned MinNorm-OG G, for the precision test and ``scripts/minnorm_precision.py``."""

from __future__ import annotations

import torch
from torch import nn


def ill_conditioned(kind: str, spread: float, samples: int = 20, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A float32 model and ``samples`` inputs within ``spread`` of one point: a smaller spread, a larger cond(G).

    ``mlp``: 8→64→64→3 (SiLU), whose Linear weights take the ghost Gram; ``conv``: two convolutions (one
    grouped), GroupNorm and a Linear head, whose per-sample gradients are formed layer by layer.
    """
    gen = torch.Generator().manual_seed(seed)
    if kind == "mlp":
        model = nn.Sequential(nn.Linear(8, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 3))
        shape: tuple[int, ...] = (8,)
    else:
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 8, 3, padding=1, groups=2),
                              nn.GroupNorm(2, 8), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
        shape = (3, 6, 6)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    x = torch.randn(1, *shape, generator=gen) + spread * torch.randn(samples, *shape, generator=gen)
    return model, x
