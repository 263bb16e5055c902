"""The MinNorm-OG paper's data-poisoning experiment, batched over seeds (``scripts/reproduce_sin.py``).

An MLP 1→300→300→1 (SiLU) is fitted to 50 points of sin(x) plus 5 poisoned
points at y = 1.5; unlearning must remove the poison. All seeds train at once
as one stacked model (weights shaped (seeds, ...)): the per-seed losses are
summed, and AdamW is element-wise, so each seed trains exactly as it would
alone, at a tenth of the Python overhead. MinNorm-OG's projection uses the
library's per-sample gradients and Gram-space projection, seed by seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from hf_unlearn.methods.minnorm_og.gradients import per_sample_output_grads, shrink_outside_span

LOW, HIGH = -5 * math.pi, 5 * math.pi
HIDDEN = 300


class StackedMLP(nn.Module):
    """``seeds`` independent MLPs 1→300→300→1 with SiLU; input (seeds, n, 1) → (seeds, n, 1)."""

    def __init__(self, seeds: int, generator: torch.Generator) -> None:
        super().__init__()

        def layer(fan_in: int, fan_out: int) -> tuple[nn.Parameter, nn.Parameter]:
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            w = (torch.rand(seeds, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            b = (torch.rand(seeds, 1, fan_out, generator=generator) * 2 - 1) * bound
            return nn.Parameter(w), nn.Parameter(b)

        self.w1, self.b1 = layer(1, HIDDEN)
        self.w2, self.b2 = layer(HIDDEN, HIDDEN)
        self.w3, self.b3 = layer(HIDDEN, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.silu(torch.baddbmm(self.b1, x, self.w1))
        h = nn.functional.silu(torch.baddbmm(self.b2, h, self.w2))
        return torch.baddbmm(self.b3, h, self.w3)


@dataclass
class PoisonData:
    x_r: torch.Tensor  # (seeds, 50, 1)
    y_r: torch.Tensor
    x_f: torch.Tensor  # (seeds, 5, 1)
    y_f: torch.Tensor
    grid: torch.Tensor  # (1000,)

    def to(self, device: torch.device | str) -> PoisonData:
        return PoisonData(*(t.to(device) for t in (self.x_r, self.y_r, self.x_f, self.y_f, self.grid)))


def make_data(seeds: int, generator: torch.Generator, n_r: int = 50, n_f: int = 5) -> PoisonData:
    x_r = LOW + (HIGH - LOW) * torch.rand(seeds, n_r, 1, generator=generator)
    x_f = LOW + (HIGH - LOW) * torch.rand(seeds, n_f, 1, generator=generator)
    return PoisonData(x_r, torch.sin(x_r), x_f, torch.full_like(x_f, 1.5), torch.linspace(LOW, HIGH, 1000))


def sup_error(model: StackedMLP, data: PoisonData) -> torch.Tensor:
    """sup_x |f(x) − sin x| over the 1000-point grid, one value per seed."""
    seeds = model.w1.shape[0]
    with torch.no_grad():
        g = data.grid.view(1, -1, 1).expand(seeds, -1, -1)
        return (model(g) - torch.sin(g)).abs().amax(dim=(1, 2))


def mse(model: StackedMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each seed, summed over seeds (seeds stay independent)."""
    return ((model(x) - y) ** 2).mean(dim=(1, 2)).sum()


def fit(model: StackedMLP, data: PoisonData, epochs: int, lr: float = 1e-3) -> None:
    """Full-batch AdamW on all 55 points: the original model.

    On a GPU the step is a few dozen tiny kernels, so launches dominate; the
    100,000 steps are replayed from one captured CUDA graph instead (the
    same arithmetic, AdamW in its capturable form).
    """
    x, y = torch.cat([data.x_r, data.x_f], 1), torch.cat([data.y_r, data.y_f], 1)
    if x.is_cuda and epochs > 10:
        _fit_graphed(model, x, y, epochs, lr)
        return
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        mse(model, x, y).backward()
        opt.step()


def _fit_graphed(model: StackedMLP, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, capturable=True)
    warmup = 3
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up steps allocate the optimizer state outside the capture
        for _ in range(warmup):
            opt.zero_grad(set_to_none=False)
            mse(model, x, y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=False)
    with torch.cuda.graph(graph):
        opt.zero_grad(set_to_none=False)
        mse(model, x, y).backward()
        opt.step()
    for _ in range(epochs - warmup):
        graph.replay()
    torch.cuda.synchronize()


def unlearn_sin(model: StackedMLP, data: PoisonData, method: str, epochs: int, lr: float, lam: float = 0.0,
                lambda_reg: float = 0.1, gamma_reg: float = 0.9, t_gd: int = 1, t_proj: int = 1,
                rel_tol: float | None = None) -> None:
    """One full-batch unlearning run of ``method`` for ``epochs`` epochs, in place (``rel_tol``: MinNorm-OG's
    Gram eigenvalue cut-off, ``solve_gram``)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    params = dict(model.named_parameters())
    seeds = model.w1.shape[0]
    for epoch in range(epochs):
        if method == "minnorm-og" and epoch < epochs - t_gd and epoch % t_proj == 0 and lambda_reg > 0:
            for s in range(seeds):
                single = _Single(model, s)
                first = torch.zeros(data.x_r.shape[1], dtype=torch.long, device=data.x_r.device)
                grads = per_sample_output_grads(single, data.x_r[s], first, call=lambda m, x: m(x), chunk_size=None)
                shrink_outside_span(dict(single.named_parameters()), grads, lambda_reg, rel_tol=rel_tol)
            lambda_reg *= gamma_reg
        opt.zero_grad(set_to_none=True)
        retain = mse(model, data.x_r, data.y_r)
        progress = epoch / max(epochs, 1)
        if method in ("gd", "minnorm-og", "retrain"):
            loss = retain
        elif method == "ga":
            loss = -mse(model, data.x_f, data.y_f)
        elif method == "neggrad+":
            loss = retain - lam * mse(model, data.x_f, data.y_f)
        elif method == "ridge":
            loss = retain + lam * sum((p ** 2).sum() for p in params.values())
        elif method == "l1-sparse":
            loss = retain + lam * (1 - progress) * sum(p.abs().sum() for p in params.values())
        else:
            raise ValueError(method)
        loss.backward()
        opt.step()


class _Single(nn.Module):
    """A view of one seed of a StackedMLP as its own module (parameters are views, edits write through)."""

    def __init__(self, stacked: StackedMLP, s: int) -> None:
        super().__init__()
        for name, p in stacked.named_parameters():
            self.register_parameter(name, nn.Parameter(p.data[s], requires_grad=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.silu(x @ self.w1 + self.b1)
        h = nn.functional.silu(h @ self.w2 + self.b2)
        return h @ self.w3 + self.b3
