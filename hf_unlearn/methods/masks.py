"""Weight saliency and top-ρ masks, shared by SalUn (forget data) and RBM (retain data).

The two methods differ only in which set the saliency comes from and which
side of the mask may change, so the saliency pass, the top-ρ selection, the
choice of maskable tensors and the safetensors format live here once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..cancel import raise_if_cancelled
from ..data import PixelNormalizer, Split
from ..engine import Engine, forward_logits
from ..errors import UnlearnError

MASKABLE_KINDS = ("weight", "bias", "norm")
SALIENCY_KINDS = ("loss", "logit")
REDUCTIONS = ("abs_of_sum", "sum_of_abs")
SCOPES = ("global", "layer")

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)


def parse_maskable(spec: str) -> tuple[str, ...]:
    """'weight,bias,norm' or 'all' → a tuple of tensor kinds; unknown kinds are an error."""
    kinds = MASKABLE_KINDS if spec.strip() == "all" else tuple(k.strip() for k in spec.split(",") if k.strip())
    bad = [k for k in kinds if k not in MASKABLE_KINDS]
    if bad or not kinds:
        raise UnlearnError(f"maskable must be 'all' or a comma list of {', '.join(MASKABLE_KINDS)}; got '{spec}'")
    return kinds


def parameter_kinds(model: nn.Module) -> dict[str, str]:
    """Each trainable parameter's kind: norm-layer parameter, bias, or weight."""
    kinds: dict[str, str] = {}
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            name = f"{mod_name}.{p_name}" if mod_name else p_name
            kinds[name] = "norm" if isinstance(module, _NORMS) else ("bias" if p_name == "bias" else "weight")
    return kinds


def architecture_signature(model: nn.Module) -> str:
    """A digest of parameter names and shapes: a mask only fits the architecture it was built on."""
    shapes = [(n, list(p.shape)) for n, p in model.named_parameters()]
    return hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16]


def saliency(engine: Engine, model: nn.Module, split: Split, normalizer: PixelNormalizer, *,
             kind: str = "logit", reduce: str = "sum_of_abs", batch_size: int = 128, sample: int = 0,
             seed: int = 0, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Gradient magnitude of each parameter entry over a set, at the current weights, in eval mode.

    ``kind``: ``logit`` differentiates the true-class logit Σ z_y (does not
    vanish at an interpolating model, the reference's choice for RBM) or
    ``loss`` the summed cross-entropy (SalUn). ``reduce``: ``abs_of_sum``
    takes |Σ_batches g| (SalUn's |∇ CE(D_f)|), ``sum_of_abs`` Σ_batches |g|
    (the reference's RBM). ``sample`` > 0 uses a seeded random subset.
    """
    if kind not in SALIENCY_KINDS:
        raise UnlearnError(f"saliency kind must be one of {', '.join(SALIENCY_KINDS)}, got '{kind}'")
    if reduce not in REDUCTIONS:
        raise UnlearnError(f"saliency reduce must be one of {', '.join(REDUCTIONS)}, got '{reduce}'")
    if sample < 0:
        raise UnlearnError(f"saliency sample size must be 0 (whole set) or positive, got {sample}")
    if len(split) == 0:
        raise UnlearnError("the saliency set is empty: a mask needs at least one sample")
    if sample and sample < len(split):
        rows = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:sample]
        split = split.subset(rows.sort().values)
    model.to(engine.device)
    model.eval()
    params = dict(model.named_parameters())
    names = names or [n for n, p in params.items() if p.requires_grad]
    # float64 sums: the top-ρ cut must not depend on the order of the additions (1 process or several)
    acc = {n: torch.zeros_like(params[n], dtype=torch.float64) for n in names}
    for i, (x, y) in enumerate(engine.batches(split, batch_size, normalizer, shuffle=False)):
        if i % engine.world != engine.rank:  # under `accelerate launch` each rank takes whole batches in turn
            continue
        raise_if_cancelled()
        x, y = x.to(engine.device), y.to(engine.device)
        model.zero_grad(set_to_none=True)
        logits = forward_logits(model, x).float()
        obj = logits.gather(1, y[:, None]).sum() if kind == "logit" else F.cross_entropy(logits, y, reduction="sum")
        obj.backward()
        for n in names:
            g = params[n].grad
            if g is not None:
                acc[n] += g.detach().double().abs() if reduce == "sum_of_abs" else g.detach().double()
    model.zero_grad(set_to_none=True)
    if engine.world > 1:
        import torch.distributed as dist

        for a in acc.values():
            dist.all_reduce(a)  # the same sums on every rank, so every rank selects the same mask
    return {n: (a.abs() if reduce == "abs_of_sum" else a).float() for n, a in acc.items()}


def top_rho(scores: dict[str, torch.Tensor], rho: float, scope: str = "global") -> dict[str, torch.Tensor]:
    """True on the ρ fraction of entries with the highest score (exactly round(ρ·N), ties broken by order)."""
    check_rho(rho)
    if scope not in SCOPES:
        raise UnlearnError(f"mask scope must be global or layer, got '{scope}'")
    if scope == "layer":
        return {n: _top_k_of(s.flatten(), round(rho * s.numel())).view_as(s) for n, s in scores.items()}
    flat = torch.cat([s.flatten().float() for s in scores.values()])
    chosen = _top_k_of(flat, round(rho * flat.numel()))
    out, start = {}, 0
    for n, s in scores.items():
        out[n] = chosen[start:start + s.numel()].view_as(s)
        start += s.numel()
    return out


def _top_k_of(v: torch.Tensor, k: int) -> torch.Tensor:
    mask = torch.zeros(v.numel(), dtype=torch.bool, device=v.device)
    if k > 0:
        mask[torch.topk(v, k, sorted=False).indices] = True
    return mask


def check_rho(rho: float) -> None:
    if not 0.0 < float(rho) < 1.0:
        raise UnlearnError(f"ρ (mask ratio) must be strictly between 0 and 1, got {rho}")


@dataclass
class WeightMask:
    """Per-parameter boolean masks (True = selected) with how they were made.

    ``selected`` covers the maskable tensors only; :meth:`trainable` turns it
    into the engine's mask over every trainable parameter (non-maskable
    tensors are frozen whole, so "only the masked weights change" is exact).
    """

    selected: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def fraction(self) -> float:
        total = sum(m.numel() for m in self.selected.values())
        return sum(int(m.sum()) for m in self.selected.values()) / max(total, 1)

    def complement(self) -> WeightMask:
        meta = dict(self.meta, complement=not self.meta.get("complement", False))
        return WeightMask({n: ~m for n, m in self.selected.items()}, meta)

    def trainable(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The engine mask: selected entries may change, everything else stays as it is."""
        out = {}
        for n, p in model.named_parameters():
            if p.requires_grad:
                out[n] = self.selected[n].to(p.device) if n in self.selected else torch.zeros_like(p, dtype=torch.bool)
        return out

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {n: m.to(torch.uint8).contiguous().cpu() for n, m in self.selected.items()}
        tmp = path.with_suffix(path.suffix + ".tmp")
        save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in self.meta.items()})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, model: nn.Module | None = None) -> WeightMask:
        """Read a mask; with ``model``, check it was built for the same architecture."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
                selected = {k: f.get_tensor(k).bool() for k in f.keys()}  # noqa: SIM118 - safe_open API
        except FileNotFoundError:
            raise UnlearnError(f"mask file '{path}' does not exist") from None
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
            raise UnlearnError(f"'{path}' is not a safetensors mask file ({exc})") from None
        mask = cls(selected, meta)
        if model is not None:
            mask.check_fits(model, str(path))
        return mask

    def check_fits(self, model: nn.Module, where: str = "the mask") -> None:
        params = dict(model.named_parameters())
        sig = self.meta.get("architecture")
        bad = [n for n, m in self.selected.items() if n not in params or tuple(params[n].shape) != tuple(m.shape)]
        if bad or (sig and sig != architecture_signature(model)):
            detail = f"parameter '{bad[0]}' does not match" if bad else "parameter shapes differ"
            raise UnlearnError(f"{where} was built for another architecture ({detail}): rebuild it for this model")


def build_mask(engine: Engine, model: nn.Module, split: Split, normalizer: PixelNormalizer, *, source: str,
               rho: float, kind: str, reduce: str, scope: str, maskable: str, sample: int, batch_size: int,
               seed: int) -> WeightMask:
    """Saliency on ``split`` → top-ρ mask over the maskable tensors, with its metadata."""
    check_rho(rho)
    kinds = parse_maskable(maskable)
    names = [n for n, k in parameter_kinds(model).items() if k in kinds]
    if not names:
        raise UnlearnError(f"the model has no trainable {maskable} parameters to mask")
    scores = saliency(engine, model, split, normalizer, kind=kind, reduce=reduce, batch_size=batch_size,
                      sample=sample, seed=seed, names=names)
    meta = {"source": source, "kind": kind, "reduce": reduce, "rho": rho, "scope": scope, "maskable": list(kinds),
            "samples": min(sample, len(split)) if sample else len(split),
            "architecture": architecture_signature(model)}
    return WeightMask(top_rho(scores, rho, scope), meta)
