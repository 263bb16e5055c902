"""Per-sample parameter gradients of a layer from its input and its output gradient.

Every sample's gradient of a Linear, Conv2d or normalisation layer is a
closed-form product of what the layer saw (its input) and what flowed back
into it (∂f/∂output). One forward and one input-gradient backward over the n
samples therefore give all n per-sample gradients, as cheap batched matmuls.
``torch.func.vmap(grad)`` computes the same numbers but batches each
convolution's weight gradient as a grouped convolution, several times slower
on a GPU. Layers outside this table (custom modules, parameters used directly
in a forward, such as a ViT's position embeddings) are left to vmap.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LayerGrads = dict[str, torch.Tensor]  # the layer's own parameter name -> (n, *param.shape)


def _bias(m: nn.Linear | nn.Conv2d, d: torch.Tensor) -> LayerGrads:
    """A Linear's or Conv2d's per-sample bias gradient: δ summed over every position it was applied at."""
    if m.bias is None:
        return {}
    n = d.shape[0]
    if type(m) is nn.Conv2d:
        return {"bias": d.reshape(n, d.shape[1], -1).sum(-1)}
    return {"bias": d.reshape(n, -1, d.shape[-1]).sum(1)}


def _linear(m: nn.Linear, a: torch.Tensor, d: torch.Tensor) -> LayerGrads:
    n = a.shape[0]
    weight = torch.bmm(d.reshape(n, -1, d.shape[-1]).transpose(1, 2), a.reshape(n, -1, a.shape[-1]))
    return {"weight": weight, **_bias(m, d)}


def patches(m: nn.Conv2d, a: torch.Tensor) -> torch.Tensor:
    """The convolution's input patches, (n, C·kh·kw, L) in the weight's (C, kh, kw) order.

    Strided views and one copy: ``F.unfold`` (im2col) launches one kernel per
    sample, a launch-bound crawl at n = 50 on a GPU.
    """
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = m.kernel_size, m.stride, m.dilation, m.padding
    n, c = a.shape[:2]
    if ph or pw:
        a = F.pad(a, (pw, pw, ph, ph))
    view = a.unfold(2, (kh - 1) * dh + 1, sh).unfold(3, (kw - 1) * dw + 1, sw)[..., ::dh, ::dw]  # n,C,H',W',kh,kw
    return view.permute(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, -1)


def _conv2d(m: nn.Conv2d, a: torch.Tensor, d: torch.Tensor) -> LayerGrads:
    n, groups = a.shape[0], m.groups
    cols = patches(m, a)
    length = cols.shape[-1]
    cols = cols.reshape(n * groups, -1, length)
    grouped = d.reshape(n * groups, -1, length)
    # bmm, not einsum: with one output position einsum picks a broadcast multiply, 6× slower on a CPU
    return {"weight": torch.bmm(grouped, cols.transpose(1, 2)).reshape(n, *m.weight.shape), **_bias(m, d)}


def _affine(normalised: torch.Tensor, d: torch.Tensor, keep: tuple[int, ...]) -> LayerGrads:
    """γ, β of an affine normalisation: sum over the dims the parameters broadcast along."""
    dims = tuple(i for i in range(1, d.ndim) if i not in keep)
    if not dims:  # ``sum(())`` would sum over every dim
        return {"weight": normalised * d, "bias": d}
    return {"weight": (normalised * d).sum(dims), "bias": d.sum(dims)}


def _batch_norm(m: nn.modules.batchnorm._BatchNorm, a: torch.Tensor, d: torch.Tensor) -> LayerGrads:
    shape = (1, -1) + (1,) * (a.ndim - 2)
    normalised = (a - m.running_mean.reshape(shape)) * torch.rsqrt(m.running_var.reshape(shape) + m.eps)
    return _affine(normalised, d, (1,))


def _layer_norm(m: nn.LayerNorm, a: torch.Tensor, d: torch.Tensor) -> LayerGrads:
    normalised = F.layer_norm(a, m.normalized_shape, eps=m.eps)
    k = len(m.normalized_shape)
    out = _affine(normalised, d, tuple(range(a.ndim - k, a.ndim)))
    return {name: g for name, g in out.items() if getattr(m, name) is not None}


def _group_norm(m: nn.GroupNorm, a: torch.Tensor, d: torch.Tensor) -> LayerGrads:
    return _affine(F.group_norm(a, m.num_groups, eps=m.eps), d, (1,))


def _conv_ok(m: nn.Conv2d) -> bool:
    return m.padding_mode == "zeros" and not isinstance(m.padding, str)


def _bn_ok(m: nn.modules.batchnorm._BatchNorm) -> bool:
    # eval-mode BatchNorm with running statistics treats samples independently
    return m.affine and m.running_mean is not None and not m.training


def _affine_ok(m: nn.Module) -> bool:
    return getattr(m, "weight", None) is not None and getattr(m, "bias", None) is not None


# exact types: a subclass (timm's BatchNormAct2d adds an activation) computes something else
RULES: dict[type, tuple[Callable[[nn.Module], bool], Callable[..., LayerGrads]]] = {
    nn.Linear: (lambda m: True, _linear),
    nn.Conv2d: (_conv_ok, _conv2d),
    nn.BatchNorm1d: (_bn_ok, _batch_norm),
    nn.BatchNorm2d: (_bn_ok, _batch_norm),
    nn.LayerNorm: (lambda m: m.elementwise_affine, _layer_norm),
    nn.GroupNorm: (_affine_ok, _group_norm),
}


def supports(module: nn.Module) -> bool:
    """True when this module's per-sample gradients have a closed form here (in its current mode)."""
    rule = RULES.get(type(module))
    return rule is not None and rule[0](module)


def layer_grads(module: nn.Module, inputs: torch.Tensor, out_grads: torch.Tensor, *,
                skip_weight: bool = False) -> LayerGrads:
    """Per-sample gradients of ``module``'s parameters; sample i's only depend on row i.

    ``skip_weight``: only the bias (its weight went through ``ghost_gram``).
    """
    if skip_weight:
        return _bias(module, out_grads)
    return RULES[type(module)][1](module, inputs, out_grads)


def weighted_sum(module: nn.Module, inputs: torch.Tensor, out_grads: torch.Tensor, c: torch.Tensor,
                 dtype: torch.dtype = torch.float64, names: tuple[str, ...] = ("weight", "bias")) -> LayerGrads:
    """Σ_i c_i g_i of ``module``'s per-sample gradients g_i (those in ``names``), summed in ``dtype``, without
    forming the g_i.

    A per-sample gradient is linear in the sample's output gradient, so the
    weighted sum is the layer's batch gradient for output gradients c_i δ_i:
    one matmul for a Linear weight, a convolution's weight gradient for a
    Conv2d. MinNorm-OG's shrink adds λ G c with large, cancelling c_i when G is
    ill-conditioned; formed in float32 (the weighted backward it replaces) that
    sum moved the retain outputs ten times more than the authors' float64 QR did.
    """
    n = inputs.shape[0]
    d = out_grads.to(dtype) * c.to(dtype).reshape(n, *(1,) * (out_grads.ndim - 1))
    a = inputs.to(dtype)
    bias = {k: g.sum(0) for k, g in _bias(module, d).items()} if "bias" in names and type(module) in (
        nn.Linear, nn.Conv2d) else {}
    if type(module) is nn.Linear:
        weight = d.reshape(-1, d.shape[-1]).T @ a.reshape(-1, a.shape[-1]) if "weight" in names else None
        return {**({"weight": weight} if weight is not None else {}), **bias}
    if type(module) is nn.Conv2d:
        if "weight" not in names:
            return bias
        if module.groups == 1 and d[0, 0].numel() < 4:  # one output position or so: a matmul of the patches
            cols = patches(module, a)  # n, C·kh·kw, L
            flat_out = d.flatten(2).transpose(0, 1).reshape(d.shape[1], -1)  # out, n·L
            weight = (flat_out @ cols.transpose(1, 2).reshape(-1, cols.shape[1])).reshape(module.weight.shape)
        else:  # the convolution's own weight gradient: no im2col copy, no per-sample gradients (grouped ones)
            weight = torch.nn.grad.conv2d_weight(a, module.weight.shape, d, module.stride, module.padding,
                                                 module.dilation, module.groups)
        return {"weight": weight, **bias}
    # the norms: their per-sample gradients are n × channels, so form and sum them (float32 running
    # statistics promote to float64 against float64 inputs)
    return {k: g.sum(0) for k, g in RULES[type(module)][1](module, a, d).items() if k in names}


def ghost_gram(module: nn.Module, inputs: torch.Tensor, out_grads: torch.Tensor, max_entries: int = 1 << 26,
               dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The weight's share of GᵀG and Gᵀθ without its per-sample gradients, when that is cheaper.

    Sample i's weight gradient is Σ_t δ_it a_itᵀ over the layer's positions t,
    so ⟨g_i, g_j⟩ = Σ_{t,s} (a_it·a_js)(δ_it·δ_js): an (nT)² product instead of
    n gradients of size D_in·D_out, far cheaper in the late, narrow-map layers
    of a CNN (where most of the weights are). And ⟨g_i, W⟩ = Σ_t δ_it·(W a_it),
    with W a formed again in ``dtype`` (the forward's float32 output would
    carry its rounding into Gᵀθ). Returns None for anything else (grouped
    convolutions, wide maps) so the caller forms the gradients instead.
    """
    n = inputs.shape[0]
    if type(module) is nn.Linear:
        a = inputs.reshape(n, -1, inputs.shape[-1])
        d = out_grads.reshape(n, -1, out_grads.shape[-1])
    elif type(module) is nn.Conv2d and module.groups == 1 and _conv_ok(module):
        a = patches(module, inputs).transpose(1, 2)
        d = out_grads.flatten(2).transpose(1, 2)
    else:
        return None
    length, d_in, d_out = a.shape[1], a.shape[2], d.shape[2]
    rows = n * length
    ghost = rows * rows * (d_in + d_out) + rows * d_in * d_out  # the two Grams, then W a for Gᵀθ
    dense = rows * d_in * d_out + n * n * d_in * d_out  # n per-sample gradients, then their Gram
    if ghost >= dense or rows * rows > max_entries:
        return None
    a, d = a.reshape(rows, d_in).to(dtype), d.reshape(rows, d_out).to(dtype)  # summed in ``dtype`` (_GramSum)
    k = ((a @ a.T) * (d @ d.T)).reshape(n, length, n, length).sum((1, 3))
    # ⟨g_i, W⟩ = Σ_t δ_it·(W a_it): W a formed again in ``dtype`` (the forward's own output is float32)
    weight = module.weight.detach().to(dtype).reshape(d_out, d_in)
    b = (d * (a @ weight.T)).reshape(n, -1).sum(1)
    return k, b
