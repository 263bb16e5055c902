"""MinNorm-OG's projection without the gradient matrix: θ ← θ − λ(θ − P_G θ) for n samples' output gradients.

``OutputSpan`` forms GᵀG and Gᵀθ from one forward and one backward of the n
samples and closed-form per-layer gradients (``layer_grads``), solves the
n × n system on the host, and gets G c from the same per-layer forms, so G
(n × d, 2.2 GB for a ResNet-18 at n = 50) never exists. ``SpanShrinker``
replays the same computation from two CUDA graphs on a GPU, where the few
hundred small kernels of one projection otherwise wait on Python.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from . import layer_grads
from .gradients import CallAsModule, logits_call, per_sample_output_grads, rank_tolerance, solve_gram

log = logging.getLogger(__name__)

#: per model, the (layer id, "in" | "out") tensors an in-place op changes after the layer ran (found once)
_COPY: weakref.WeakKeyDictionary[nn.Module, set[tuple[int, str]]] = weakref.WeakKeyDictionary()


class OutputSpan:
    """GᵀG and Gᵀθ for n samples' output gradients, without G in memory; then the shrink θ ← θ − λ(θ − P_G θ).

    One forward of the n samples (eval mode, no autocast) keeps each
    supported layer's input and output; one backward to those outputs gives
    every sample's ∂f_i/∂output; each layer's per-sample gradients then go
    into the Gram sums and are dropped (or never formed, see
    ``layer_grads.ghost_gram``). Parameters no closed form covers come from
    ``per_sample_output_grads`` (vmap over them alone, ``chunk_size``
    samples per call). The shrink needs only G c: each layer's share is its
    batch gradient for output gradients cᵢδᵢ (``layer_grads.weighted_sum``),
    from the inputs and output gradients kept from the Gram pass.

    Both the Gram products and G c are formed in float64 from the float32
    gradients: the normal equations square cond(G), and G c adds large,
    cancelling cᵢ when G is ill-conditioned. With float32 Gram sums the retain
    samples' outputs moved hundreds of times more than under the authors'
    float64 QR, and with a float32 G c about ten times more
    (``scripts/minnorm_precision.py``, ``tests/test_minnorm.py``).
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, params: dict[str, torch.Tensor], *,
                 index: torch.Tensor | None = None,
                 call: Callable[[nn.Module, torch.Tensor], torch.Tensor] = logits_call,
                 chunk_size: int | None = None, dtype: torch.dtype = torch.float64) -> None:
        self.model, self.params, self.chunk_size, self.dtype = model, params, chunk_size, dtype
        # fresh leaves sharing the parameters' storage: differentiating to them never touches the parameters'
        # own autograd nodes, which a live loss graph or DDP may hold bound to another CUDA stream
        self.leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
        modes = {m: m.training for m in model.modules()}
        model.eval()
        #: per covered layer, the (input, output gradient) pairs of its calls; per other parameter, its
        #: per-sample gradients: what G c is formed from
        self.kept: list[tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]] = []
        self.rest_grads: dict[str, torch.Tensor] = {}
        try:
            self.k, self.b = self._gram(x, index, call)
        finally:
            for module, training in modes.items():
                module.training = training
        self.outputs = self.leaves = None  # the autograd graph is spent: G c needs only what ``kept`` holds

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
                                        torch.ones_like(self.outputs), allow_unused=True)
        calls = [(m, a, o) for m, a, _, o, _ in calls]
        names = {id(p): n for n, p in self.params.items()}
        gram = _GramSum(len(x), dtype=self.dtype)
        covered = set()
        for module in owners:  # one layer at a time
            mine = [(a, d) for (m, a, _), d in zip(calls, out_grads, strict=True) if m is module and d is not None]
            if mine:
                self.kept.append((module, mine))
            ghost = None
            weight = getattr(module, "weight", None)
            if len(mine) == 1 and weight is not None and id(weight) in names:
                a, d = mine[0]
                ghost = layer_grads.ghost_gram(module, a, d, dtype=self.dtype)
            if ghost is not None:
                gram.add_product(*ghost)
                covered.add(names[id(weight)])
            grads: dict[str, torch.Tensor] = {}
            for a, d in mine:  # per-sample gradients in ``dtype``: the same G as the weighted sum of G c
                for local, g in layer_grads.layer_grads(module, a.to(self.dtype), d.to(self.dtype),
                                                        skip_weight=ghost is not None).items():
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
                self.rest_grads[name] = g
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
                leaves = {f"inner.{n}": t for n, t in self.leaves.items()}
                out = functional_call(CallAsModule(self.model, call), leaves, (x,)).reshape(len(x), -1)
                if index is None:
                    index = out.detach().argmax(dim=1)
                self.outputs = out.gather(1, index.reshape(-1, 1).to(out.device))[:, 0]
        finally:
            for h in handles:
                h.remove()
        return calls, index

    def coefficients(self) -> torch.Tensor:
        """c with G c = P_G θ (directions below float noise dropped: ``rank_tolerance``)."""
        return solve_gram(self.k, self.b, self.rel_tol)

    @property
    def rel_tol(self) -> float:
        grad_dtype = next(iter(self.params.values())).dtype
        return rank_tolerance(grad_dtype, self.dtype)

    def shrink(self, lam: float) -> torch.Tensor:
        """θ ← (1 − λ)θ + λ G c in place; returns c."""
        c = self.coefficients()
        self.update(c.to(self.k.device), 1.0 - lam, lam)
        return c

    @torch.no_grad()
    def span_vector(self, c: torch.Tensor) -> dict[str, torch.Tensor]:
        """G c per parameter: Σᵢ cᵢ gᵢ (in ``dtype``) from the kept layer tensors and the vmapped gradients."""
        names = {id(p): n for n, p in self.params.items()}
        out: dict[str, torch.Tensor] = {}
        for module, pairs in self.kept:
            wanted = tuple(local for local, p in module.named_parameters(recurse=False) if id(p) in names)
            for a, d in pairs:
                for local, g in layer_grads.weighted_sum(module, a, d, c, self.dtype, wanted).items():
                    name = names[id(getattr(module, local))]
                    out[name] = out[name] + g if name in out else g  # a layer used twice: they add
        for name, g in self.rest_grads.items():
            out[name] = (c.to(self.dtype) @ g.reshape(len(c), -1).to(self.dtype)).reshape(g.shape[1:])
        return out

    @torch.no_grad()
    def update(self, c: torch.Tensor, keep: float | torch.Tensor, lam: float | torch.Tensor) -> None:
        """θ ← keep·θ + lam·G c (G c summed in ``dtype``, then added in the parameters' own).

        ``keep`` and ``lam`` are numbers, or 0-dim device tensors that a
        captured CUDA graph reads afresh at every replay.
        """
        gc = self.span_vector(c)
        torch._foreach_mul_(list(self.params.values()), keep)  # without a share of G c: all outside the span
        moved = [(self.params[n], g.to(self.params[n].dtype)) for n, g in gc.items()]
        if not moved:
            return
        ps, gs = [p for p, _ in moved], [g for _, g in moved]
        if isinstance(lam, torch.Tensor):  # a graph's λ: read from the device at replay
            torch._foreach_add_(ps, torch._foreach_mul(gs, lam))
        else:  # one fused multiply-add
            torch._foreach_add_(ps, gs, alpha=lam)


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
    the time on a GPU), yet never more than a block of G in memory.

    The products are formed in float64 from the gradients as they are (float32
    for a float32 model): the normal equations square G's condition number, and
    float32 sums of an ill-conditioned G moved the retain outputs hundreds of
    times more than the authors' float64 QR does (``scripts/minnorm_precision.py``).
    A product of two float32 numbers is exact in float64, so only the sums round.
    """

    def __init__(self, n: int, block_bytes: int = 256 << 20, dtype: torch.dtype = torch.float64) -> None:
        self.n, self.block_bytes, self.dtype = n, block_bytes, dtype
        self.k: torch.Tensor | None = None
        self.b: torch.Tensor | None = None
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.products: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.size = 0

    def add(self, g: torch.Tensor, theta: torch.Tensor) -> None:
        self.pending.append((g.reshape(self.n, -1), theta.detach().reshape(-1)))
        self.size += g.numel() * self.dtype.itemsize  # the block is gathered in ``dtype``
        if self.size >= self.block_bytes:
            self._flush()

    def add_product(self, k: torch.Tensor, b: torch.Tensor) -> None:
        """A block's share already multiplied out (``layer_grads.ghost_gram``)."""
        self.products.append((k, b))

    def _flush(self) -> None:
        if not self.pending:
            return
        widths = [g.shape[1] for g, _ in self.pending]
        dev = self.pending[0][0].device
        g = torch.empty(self.n, sum(widths), dtype=self.dtype, device=dev)
        theta = torch.empty(sum(widths), dtype=self.dtype, device=dev)
        start = 0
        for (part, t), width in zip(self.pending, widths, strict=True):  # one widening copy each, into place
            g[:, start:start + width].copy_(part)
            theta[start:start + width].copy_(t)
            start += width
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
    captures (1) forward, backward and the Gram sums and (2) G c and the
    update, then replays them: only the n × n solve runs on
    the host in between. Parameters outside the closed forms (vmap), a CPU, or
    a capture that fails keep the eager path.
    """

    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor], *,
                 call: Callable[[nn.Module, torch.Tensor], torch.Tensor] = logits_call,
                 chunk_size: int | None = None, graphs: bool = True, dtype: torch.dtype = torch.float64) -> None:
        self.model, self.params, self.call, self.chunk_size, self.dtype = model, params, call, chunk_size, dtype
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
                span = OutputSpan(self.model, x, self.params, call=self.call, chunk_size=self.chunk_size,
                                  dtype=self.dtype)
                c = span.shrink(lam)
            torch.cuda.current_stream(x.device).wait_stream(side)
            self.state[key] = "capture" if span.closed_form else "eager"
            return c
        if state == "capture":
            try:
                state = self.state[key] = _GraphedSpan(self.model, self.params, x, self.call, self.dtype)
            except RuntimeError as err:  # a forward that cannot be captured: stay eager
                log.warning("MinNorm-OG: CUDA graph capture failed (%s); eager", err)
                self.state[key] = "eager"
                return self._eager(x, lam)
        return state.run(x, lam)

    def path(self) -> str:
        """How the projections ran: "cuda-graphs" when any input shape was replayed, else "eager"."""
        return "cuda-graphs" if any(isinstance(v, _GraphedSpan) for v in self.state.values()) else "eager"

    def _eager(self, x: torch.Tensor, lam: float) -> torch.Tensor:
        return OutputSpan(self.model, x, self.params, call=self.call, chunk_size=self.chunk_size,
                          dtype=self.dtype).shrink(lam)


class _GraphedSpan:
    """The two captured halves of one projection, on static buffers (see ``SpanShrinker``)."""

    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, call: Callable,
                 dtype: torch.dtype = torch.float64) -> None:
        dev = x.device
        self.x = x.detach().clone()
        self.keep = torch.ones((), device=dev)
        self.lam = torch.zeros((), device=dev)
        self.first = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.first):
            self.span = OutputSpan(model, self.x, params, call=call, dtype=dtype)
        self.c = torch.zeros(len(x), device=dev, dtype=torch.float64)
        self.second = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.second):  # reads the layer tensors the first graph keeps (``span.kept``)
            self.span.update(self.c, self.keep, self.lam)

    def run(self, x: torch.Tensor, lam: float) -> torch.Tensor:
        self.x.copy_(x)
        self.first.replay()
        c = self.span.coefficients()
        self.c.copy_(c)
        self.keep.fill_(1.0 - lam)
        self.lam.fill_(lam)
        self.second.replay()
        return c
