"""Per-sample output gradients and the projection onto their span, for any ``nn.Module``.

MinNorm-OG needs, for G = [∇_θ f(θ, x_1), …, ∇_θ f(θ, x_n)] with n ≈ 50, the
shrink θ ← θ − λ(θ − P_G θ). The authors built G with one backward pass per
column and a QR of the dense d × n matrix (which overflows at 24M parameters).
This module holds the general path: G from one batched ``torch.func.vmap(grad)``
call, split by parameter tensor, and the projection in the n × n Gram space
(``P_G θ = G (GᵀG)⁻¹ Gᵀ θ``, solved in float64). The method itself uses
``span`` (beside this module), which never forms G; this path covers the parameters
no closed form does, serves the sin experiment's stacked MLPs, and is the
tests' reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ...engine import forward_logits

Grads = dict[str, torch.Tensor]  # parameter name -> (n, *param.shape)


def logits_call(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Default model call: a transformers image classifier's logits."""
    return forward_logits(model, x)


def per_sample_output_grads(model: nn.Module, x: torch.Tensor, index: torch.Tensor | None = None, *,
                            call: Callable[[nn.Module, torch.Tensor], torch.Tensor] = logits_call,
                            names: list[str] | None = None, chunk_size: int | None = 16) -> Grads:
    """∇_θ of each sample's output ``index[i]`` (default: its argmax logit, held constant).

    The model runs in eval mode (deterministic; BatchNorm uses its running
    statistics, so samples do not interact). ``chunk_size`` bounds the
    activation memory of the vmapped backward passes.
    """
    from torch.func import functional_call, grad, vmap

    modes = {m: m.training for m in model.modules()}  # per module: a frozen-BatchNorm policy survives the call
    model.eval()
    trainable = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    params = trainable if names is None else {n: trainable[n] for n in names}
    wrapper = CallAsModule(model, call)
    fixed = {f"inner.{n}": t.detach() for n, t in list(model.named_parameters()) + list(model.named_buffers())
             if n not in params}
    if index is None:
        with torch.no_grad():
            index = call(model, x).reshape(len(x), -1).argmax(dim=1)

    def output(p: dict[str, torch.Tensor], xi: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        tensors = {**fixed, **{f"inner.{n}": t for n, t in p.items()}}
        return functional_call(wrapper, tensors, (xi.unsqueeze(0),)).reshape(-1).gather(0, k.reshape(1))[0]

    try:
        g = vmap(grad(output), in_dims=(None, 0, 0), chunk_size=chunk_size)(params, x, index)
    finally:
        for module, training in modes.items():
            module.training = training
    return {n: t.detach() for n, t in g.items()}


class CallAsModule(nn.Module):
    """Wraps ``call(model, x)`` as a module so ``functional_call`` can substitute the weights."""

    def __init__(self, inner: nn.Module, call: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.inner = inner
        self._call = call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._call(self.inner, x)


def gram(grads: Grads, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """GᵀG (n × n), summed in ``dtype`` from the gradients as they are (see ``span._GramSum``); float64 result."""
    n = next(iter(grads.values())).shape[0]
    k = None
    for g in grads.values():
        flat = g.reshape(n, -1).to(dtype)
        block = flat @ flat.T
        k = block if k is None else k + block
    return k.double()


def span_coefficients(grads: Grads, params: dict[str, torch.Tensor], rel_tol: float | None = None,
                      dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """c with G c = P_G θ: solves (GᵀG) c = Gᵀθ, both products summed in ``dtype``; ``rel_tol`` (default
    :func:`rank_tolerance` of the gradients' and the sums' dtypes) is the eigenvalue cut-off."""
    n = next(iter(grads.values())).shape[0]
    if rel_tol is None:
        rel_tol = rank_tolerance(next(iter(grads.values())).dtype, dtype)
    k = gram(grads, dtype)
    b = torch.zeros(n, dtype=torch.float64, device=k.device)
    for name, g in grads.items():
        b += (g.reshape(n, -1).to(dtype) @ params[name].detach().reshape(-1).to(dtype)).double()
    return solve_gram(k, b, rel_tol).to(k.device)


def rank_tolerance(grad_dtype: torch.dtype, sum_dtype: torch.dtype = torch.float64) -> float:
    """The Gram eigenvalue cut-off (a share of the largest): below it a direction of G is rounding noise.

    A gradient carries relative noise of its dtype's epsilon, so singular values of G below eps·σ_max are
    noise: eigenvalues of GᵀG below eps²·λ_max (a direction kept below it adds O(|θ|) of noise to G c). And
    GᵀG summed in ``sum_dtype`` cannot resolve eigenvalues below eps(sum_dtype)·λ_max. For float32
    gradients summed in float64 that is float32's eps² = 1.4e-14: on the data-poisoning network it keeps the
    directions that stand above float32 noise, where the former fixed 1e-10 (1e-5 on σ) dropped 1 to 6 of
    them (``scripts/sin_spectrum.py``), and it gave median sup-errors of 1.38 / 0.83 / 0.63 at 10 / 100 /
    1000 epochs against 1.35 / 1.42 / 0.67 (``scripts/reproduce_sin.py --cutoff``, 10 seeds; docs/fidelity.md).
    """
    return max(torch.finfo(grad_dtype).eps ** 2, torch.finfo(sum_dtype).eps)


#: rank cut-offs compared on the sin experiment, each as σ / σ_max of G below which a direction is dropped
#: (for float32 gradients and float64 sums): the fixed one used before, and ones set from float32's epsilon
CUTOFFS: dict[str, Callable[[torch.dtype, int], float]] = {
    "eps": lambda dtype, n: rank_tolerance(dtype, torch.float64) ** 0.5,  # the method's (rank_tolerance)
    "1e-5": lambda dtype, n: 1e-5,
    "sqrt(n)·eps": lambda dtype, n: n ** 0.5 * torch.finfo(dtype).eps,
}


def solve_gram(k: torch.Tensor, b: torch.Tensor, rel_tol: float = 1e-10) -> torch.Tensor:
    """c = (GᵀG)⁻¹ Gᵀθ by Cholesky, eigen-pseudo-inverse if G is rank deficient (on the CPU, float64).

    An n × n system with n ≈ 50 is microseconds on a CPU; on a GPU the
    factorisation, the condition check and the info flag each cost a launch
    and a synchronisation, so the small solve always moves to the host.
    """
    k, b = k.detach().double().cpu(), b.detach().double().cpu()
    chol, info = torch.linalg.cholesky_ex(k)
    if int(info) == 0:
        c = torch.cholesky_solve(b[:, None], chol)[:, 0]
        if torch.isfinite(c).all() and torch.linalg.cond(k) < 1.0 / rel_tol:
            return c
    evals, evecs = torch.linalg.eigh(k)
    keep = evals > rel_tol * evals.abs().max().clamp_min(1e-300)
    inv = torch.where(keep, 1.0 / evals.clamp_min(1e-300), torch.zeros_like(evals))
    return evecs @ (inv * (evecs.T @ b))


@torch.no_grad()
def shrink_outside_span(params: dict[str, torch.Tensor], grads: Grads, lam: float,
                        dtype: torch.dtype = torch.float64, rel_tol: float | None = None) -> torch.Tensor:
    """θ ← θ − λ (θ − P_G θ) in place, tensor by tensor, GᵀG, Gᵀθ and P_G θ = G c summed in ``dtype``;
    ``rel_tol``: the Gram eigenvalue cut-off (see :func:`solve_gram`). Returns the span coefficients."""
    c = span_coefficients(grads, params, rel_tol=rel_tol, dtype=dtype)
    n = c.shape[0]
    for name, p in params.items():
        if name not in grads:
            p.mul_(1.0 - lam)  # no gradient direction in this tensor: all of it lies outside the span
            continue
        proj = (grads[name].reshape(n, -1).to(dtype).T @ c.to(p.device, dtype)).reshape(p.shape)  # P θ
        p.mul_(1.0 - lam).add_(proj.to(p.dtype), alpha=lam)  # θ − λ(θ − Pθ) = (1 − λ)θ + λPθ
    return c
