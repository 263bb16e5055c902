"""Per-sample output gradients and the projection onto their span, for any ``nn.Module``.

MinNorm-OG needs, for G = [∇_θ f(θ, x_1), …, ∇_θ f(θ, x_n)] with n ≈ 50, the
shrink θ ← θ − λ(θ − P_G θ). The authors built G with one backward pass per
column and a QR of the dense d × n matrix (which overflows at 24M parameters).
Here ``OutputSpan`` never forms G: GᵀG and Gᵀθ come from closed-form
per-layer gradients (``layer_grads``), the n × n system is solved in float64
(``P_G θ = G (GᵀG)⁻¹ Gᵀ θ``), and G c from one weighted backward;
``SpanShrinker`` replays that from CUDA graphs on a GPU. The vmap path
(``per_sample_output_grads``, ``shrink_outside_span``) is kept: it covers
parameters no closed form does, serves the sin experiment's stacked MLPs,
and is the tests' reference.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from . import layer_grads
from .engine import forward_logits

Grads = dict[str, torch.Tensor]  # parameter name -> (n, *param.shape)

#: per model, the (layer id, "in" | "out") tensors an in-place op changes after the layer ran (found once)
_COPY: weakref.WeakKeyDictionary[nn.Module, set[tuple[int, str]]] = weakref.WeakKeyDictionary()


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
    wrapper = _Call(model, call)
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


class _Call(nn.Module):
    """Wraps ``call(model, x)`` as a module so ``functional_call`` can substitute the weights."""

    def __init__(self, inner: nn.Module, call: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.inner = inner
        self._call = call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._call(self.inner, x)


def gram(grads: Grads) -> torch.Tensor:
    """GᵀG (n × n, float64): each tensor's block is multiplied in its own precision, the sum kept in float64."""
    n = next(iter(grads.values())).shape[0]
    k = None
    for g in grads.values():
        flat = g.reshape(n, -1)
        block = (flat @ flat.T).double()
        k = block if k is None else k + block
    return k


def span_coefficients(grads: Grads, params: dict[str, torch.Tensor], rel_tol: float = 1e-10) -> torch.Tensor:
    """c with G c = P_G θ: solves (GᵀG) c = Gᵀθ."""
    n = next(iter(grads.values())).shape[0]
    k = gram(grads)
    b = torch.zeros(n, dtype=torch.float64, device=k.device)
    for name, g in grads.items():
        b += (g.reshape(n, -1) @ params[name].reshape(-1).to(g.dtype)).double()
    return solve_gram(k, b, rel_tol).to(k.device)


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
def shrink_outside_span(params: dict[str, torch.Tensor], grads: Grads, lam: float) -> torch.Tensor:
    """θ ← θ − λ (θ − P_G θ) in place, tensor by tensor; returns the span coefficients."""
    c = span_coefficients(grads, params)
    n = c.shape[0]
    for name, p in params.items():
        if name not in grads:
            p.mul_(1.0 - lam)  # no gradient direction in this tensor: all of it lies outside the span
            continue
        g = grads[name].reshape(n, -1)
        proj = (g.T @ c.to(g.dtype)).reshape(p.shape)
        p.mul_(1.0 - lam).add_(proj.to(p.dtype), alpha=lam)  # θ − λ(θ − Pθ) = (1 − λ)θ + λPθ
    return c


class OutputSpan:
    """GᵀG and Gᵀθ for n samples' output gradients, without G in memory; then the shrink θ ← θ − λ(θ − P_G θ).

    One forward of the n samples (eval mode, no autocast) keeps each
    supported layer's input; one backward to the layers' outputs gives every
    sample's ∂f_i/∂output; each layer's per-sample gradients then go into
    the Gram sum and are dropped, so no d × n matrix ever exists. Parameters no closed form covers
    come from ``per_sample_output_grads`` (vmap over them alone, ``chunk_size``
    samples per call). The shrink
    needs only G c, which one weighted backward of Σ cᵢ fᵢ gives for every
    parameter at once.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, params: dict[str, torch.Tensor], *,
                 index: torch.Tensor | None = None,
                 call: Callable[[nn.Module, torch.Tensor], torch.Tensor] = logits_call,
                 chunk_size: int | None = None) -> None:
        self.model, self.params, self.chunk_size = model, params, chunk_size
        # fresh leaves sharing the parameters' storage: differentiating to them never touches the parameters'
        # own autograd nodes, which a live loss graph or DDP may hold bound to another CUDA stream
        self.leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
        modes = {m: m.training for m in model.modules()}
        model.eval()
        try:
            self.k, self.b = self._gram(x, index, call)
        finally:
            for module, training in modes.items():
                module.training = training

    def _gram(self, x: torch.Tensor, index: torch.Tensor | None, call: Callable) -> tuple[torch.Tensor, torch.Tensor]:
        owners = _hooked_owners(self.model, self.params)
        copy = _COPY.setdefault(self.model, set())
        while True:
            calls, index = self._forward(x, index, call, owners, copy)
            changed = {(id(m), "in") for m, a, va, _, _ in calls if a._version != va} | \
                      {(id(m), "out") for m, _, _, o, vo in calls if o._version != vo}
            if not changed:
                break
            # an in-place op (ReLU(inplace=True), a residual +=) changed a kept tensor after its layer ran:
            # keep a copy of that one from now on (one kernel each, so only where needed) and run again
            if changed <= copy:
                raise RuntimeError("a layer's kept input or output changed in place despite the copy")
            copy |= changed
        out_grads = torch.autograd.grad(self.outputs, [c[3] for c in calls],
                                        torch.ones_like(self.outputs), retain_graph=True, allow_unused=True)
        calls = [(m, a, o) for m, a, _, o, _ in calls]
        names = {id(p): n for n, p in self.params.items()}
        gram = _GramSum(len(x))
        covered = set()
        for module in owners:  # one layer at a time
            mine = [(a, o, d) for (m, a, o), d in zip(calls, out_grads, strict=True) if m is module and d is not None]
            ghost = None
            weight = getattr(module, "weight", None)
            if len(mine) == 1 and weight is not None and id(weight) in names:
                ghost = layer_grads.ghost_gram(module, *mine[0][::2], mine[0][1])
            if ghost is not None:
                gram.add_product(*ghost)
                covered.add(names[id(weight)])
            grads: dict[str, torch.Tensor] = {}
            for a, _, d in mine:
                for local, g in layer_grads.layer_grads(module, a, d, skip_weight=ghost is not None).items():
                    grads[local] = grads[local] + g if local in grads else g  # a layer used twice: they add
            for local, g in grads.items():
                p = getattr(module, local)
                if id(p) in names:
                    gram.add(g, p)
                    covered.add(names[id(p)])
        rest = [n for n in self.params if n not in covered]
        self.closed_form = not rest  # every gradient from the closed forms (no vmap): capturable
        if rest:
            for name, g in per_sample_output_grads(self.model, x, index, call=call, names=rest,
                                                   chunk_size=self.chunk_size).items():
                gram.add(g, self.params[name])
        return gram.result()

    def _forward(self, x: torch.Tensor, index: torch.Tensor | None, call: Callable, owners: list[nn.Module],
                 copy: set[tuple[int, str]]) -> tuple[list, torch.Tensor]:
        """Forward of the n samples keeping each owner's input and output (and their version counters)."""
        calls: list[tuple[nn.Module, torch.Tensor, int, torch.Tensor, int]] = []

        def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            a = inputs[0].detach()
            if (id(module), "in") in copy:
                a = a.clone()
            calls.append((module, a, a._version, output, output._version))
            return output.clone() if (id(module), "out") in copy else None  # the copy flows on, ours stays

        handles = [m.register_forward_hook(keep) for m in owners]
        try:
            with torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
                out = functional_call(_Call(self.model, call), {f"inner.{n}": t for n, t in self.leaves.items()},
                                      (x,)).reshape(len(x), -1)
                if index is None:
                    index = out.detach().argmax(dim=1)
                self.outputs = out.gather(1, index.reshape(-1, 1).to(out.device))[:, 0]
        finally:
            for h in handles:
                h.remove()
        return calls, index

    def coefficients(self) -> torch.Tensor:
        """c with G c = P_G θ."""
        return solve_gram(self.k, self.b)

    @torch.no_grad()
    def shrink(self, lam: float) -> torch.Tensor:
        """θ ← (1 − λ)θ + λ G c in place; returns c."""
        c = self.coefficients()
        tensors = list(self.params.values())
        with torch.enable_grad():
            gc = torch.autograd.grad(self.outputs, list(self.leaves.values()), c.to(self.outputs), allow_unused=True)
        self.outputs = None  # the graph is spent
        torch._foreach_mul_(tensors, 1.0 - lam)
        moved = [(p, g) for p, g in zip(tensors, gc, strict=True) if g is not None]
        if moved:
            torch._foreach_add_([p for p, _ in moved], [g.to(p.dtype) for p, g in moved], alpha=lam)
        return c


def _hooked_owners(model: nn.Module, params: dict[str, torch.Tensor]) -> list[nn.Module]:
    """Modules whose trainable parameters all have a closed-form per-sample gradient, used nowhere else."""
    wanted = {id(p) for p in params.values()}
    uses: dict[int, int] = {}
    for m in model.modules():
        for p in m.parameters(recurse=False):
            uses[id(p)] = uses.get(id(p), 0) + 1
    owners = []
    for m in model.modules():
        own = [p for p in m.parameters(recurse=False) if id(p) in wanted]
        if own and layer_grads.supports(m) and all(uses[id(p)] == 1 for p in own):
            owners.append(m)
    return owners


class _GramSum:
    """Running GᵀG and Gᵀθ from per-sample gradients, a bounded block at a time.

    Gradients gather until ``block_bytes``, then go into the sums by one
    concatenation, one ``addmm`` and one ``addmv``: few kernel launches (at
    n ≈ 50 each layer's share is small and launches, not arithmetic, set
    the time on a GPU), yet never more than a block of G in memory. Sums are
    float32, or float64 when a gradient is, and returned as float64.
    """

    def __init__(self, n: int, block_bytes: int = 256 << 20) -> None:
        self.n, self.block_bytes = n, block_bytes
        self.k: torch.Tensor | None = None
        self.b: torch.Tensor | None = None
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.products: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.size = 0

    def add(self, g: torch.Tensor, theta: torch.Tensor) -> None:
        self.pending.append((g.reshape(self.n, -1), theta.detach().reshape(-1)))
        self.size += g.numel() * g.element_size()
        if self.size >= self.block_bytes:
            self._flush()

    def add_product(self, k: torch.Tensor, b: torch.Tensor) -> None:
        """A block's share already multiplied out (``layer_grads.ghost_gram``)."""
        self.products.append((k, b))

    def _flush(self) -> None:
        if not self.pending:
            return
        dtype = torch.float64 if any(g.dtype == torch.float64 for g, _ in self.pending) else torch.float32
        g = torch.cat([g.to(dtype) for g, _ in self.pending], dim=1)
        theta = torch.cat([t.to(dtype) for _, t in self.pending])
        self.pending, self.size = [], 0
        if self.k is None:
            self.k, self.b = g @ g.T, g @ theta
        else:
            self.k.addmm_(g, g.T)
            self.b.addmv_(g, theta)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._flush()
        parts = ([] if self.k is None else [(self.k, self.b)]) + self.products
        if not parts:
            raise ValueError("no parameter has an output gradient: nothing spans G")
        k = torch.stack([p[0] for p in parts]).sum(0)
        b = torch.stack([p[1] for p in parts]).sum(0)
        return k.double(), b.double()


class SpanShrinker:
    """``OutputSpan(...).shrink(λ)`` for one model, step after step; on a GPU replayed from two CUDA graphs.

    At n ≈ 50 samples the projection is a few hundred small kernels: the GPU
    finishes each faster than Python launches the next, so the eager
    projection costs several retain steps while the GPU idles. The first call
    for an input shape runs eagerly (the warm-up a capture needs); the second
    captures (1) forward, backward and the Gram sums and (2) the weighted
    backward and the update, then replays them: only the n × n solve runs on
    the host in between. Parameters outside the closed forms (vmap), a CPU, or
    a capture that fails keep the eager path.
    """

    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor], *,
                 call: Callable[[nn.Module, torch.Tensor], torch.Tensor] = logits_call,
                 chunk_size: int | None = None, graphs: bool = True) -> None:
        self.model, self.params, self.call, self.chunk_size = model, params, call, chunk_size
        self.use_graphs = graphs
        self.state: dict[tuple, str | _GraphedSpan] = {}  # per input shape: "eager", "capture" or the graphs

    def __call__(self, x: torch.Tensor, lam: float) -> torch.Tensor:
        """Shrinks the parameters in place; returns the span coefficients c."""
        key = (tuple(x.shape), x.dtype, x.device)
        state = self.state.get(key)
        if not (self.use_graphs and x.is_cuda) or state == "eager":
            return self._eager(x, lam)
        if state is None:  # warm-up, on a side stream as capture requires
            side = torch.cuda.Stream(x.device)
            side.wait_stream(torch.cuda.current_stream(x.device))
            with torch.cuda.stream(side):
                span = OutputSpan(self.model, x, self.params, call=self.call, chunk_size=self.chunk_size)
                c = span.shrink(lam)
            torch.cuda.current_stream(x.device).wait_stream(side)
            self.state[key] = "capture" if span.closed_form else "eager"
            return c
        if state == "capture":
            try:
                state = self.state[key] = _GraphedSpan(self.model, self.params, x, self.call)
            except RuntimeError as err:  # a forward that cannot be captured: stay eager
                import logging

                logging.getLogger(__name__).warning("MinNorm-OG: CUDA graph capture failed (%s); eager", err)
                self.state[key] = "eager"
                return self._eager(x, lam)
        return state.run(x, lam)

    def path(self) -> str:
        """How the projections ran: "cuda-graphs" when any input shape was replayed, else "eager"."""
        return "cuda-graphs" if any(isinstance(v, _GraphedSpan) for v in self.state.values()) else "eager"

    def _eager(self, x: torch.Tensor, lam: float) -> torch.Tensor:
        return OutputSpan(self.model, x, self.params, call=self.call, chunk_size=self.chunk_size).shrink(lam)


class _GraphedSpan:
    """The two captured halves of one projection, on static buffers (see ``SpanShrinker``)."""

    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, call: Callable) -> None:
        dev = x.device
        self.x = x.detach().clone()
        self.keep = torch.ones((), device=dev)
        self.lam = torch.zeros((), device=dev)
        tensors = list(params.values())
        self.first = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.first):
            self.span = OutputSpan(model, self.x, params, call=call)
        self.c = torch.zeros(len(x), device=dev, dtype=self.span.outputs.dtype)
        self.second = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.second):
            with torch.enable_grad():
                gc = torch.autograd.grad(self.span.outputs, list(self.span.leaves.values()), self.c,
                                         retain_graph=True, allow_unused=True)
            with torch.no_grad():
                torch._foreach_mul_(tensors, self.keep)
                moved = [(p, g) for p, g in zip(tensors, gc, strict=True) if g is not None]
                if moved:
                    step = torch._foreach_mul([g.to(p.dtype) for p, g in moved], self.lam)
                    torch._foreach_add_([p for p, _ in moved], step)
        # the replays need only the memory (kept by the graphs' private pools), not the autograd graph: kept,
        # its AccumulateGrad nodes would stay bound to the capture stream and sync every later backward
        self.span.outputs = self.span.leaves = None

    def run(self, x: torch.Tensor, lam: float) -> torch.Tensor:
        self.x.copy_(x)
        self.first.replay()
        c = solve_gram(self.span.k, self.span.b)
        self.c.copy_(c)
        self.keep.fill_(1.0 - lam)
        self.lam.fill_(lam)
        self.second.replay()
        return c
