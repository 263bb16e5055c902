"""One MinNorm-OG projection on an ill-conditioned float32 model: how far each path lands from exact arithmetic.

The projection θ ← θ − λ(θ − P_G θ) must leave every retain sample's
(linearised) output unchanged: Gᵀθ' = Gᵀθ. hf-unlearn solves the normal
equations (GᵀG) c = Gᵀθ, which square G's condition number, so the two Gram
products must be formed precisely; the authors' code does a float64 QR of G
instead. For MLPs whose retain inputs are near-collinear (cond(G) from about
2e2 to 1e4), this prints, per path, the step's error relative to the exact
step (float64 QR and float64 arithmetic on the same float32 G) and the
largest change of a retain sample's linearised output |Gᵀ(θ' − θ)|, with G the float64 copy's (every
float32 G, however it is formed, differs from it in its last bits):

- ``hooks``: the method's own path (``OutputSpan``: closed-form and ghost Gram products),
- ``vmap``: per-sample gradients by ``torch.func.vmap`` and ``shrink_outside_span`` (the sin experiment's path),
- each of them with ``span_precision=float32`` (GᵀG, Gᵀθ and G c summed in float32, as before 2026-12-01),
- ``authors``: the authors' projection (float64 QR of G, Q back to float32, the update in float32), as a reference,
- ``exact, stored``: the exact step rounded once into the float32 weights (the floor).

    python scripts/minnorm_precision.py [--model mlp|conv] [--samples 20] [--lam 0.5]
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # research/ lives beside the package

from hf_unlearn.methods.minnorm_og.gradients import per_sample_output_grads, shrink_outside_span  # noqa: E402
from hf_unlearn.methods.minnorm_og.span import OutputSpan  # noqa: E402
from research.conditioning import ill_conditioned  # noqa: E402

#: spreads of the retain inputs around one point, per model; smaller is more collinear, a larger cond(G)
SPREADS = {"mlp": (2e-1, 7e-2, 3.5e-2, 1e-2), "conv": (3e-1, 1e-1, 3e-2, 1e-2)}


def plain_call(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()


def gradient_matrix(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """G (d × n) in the model's dtype, each column a sample's max-logit gradient (argmax held constant)."""
    grads = per_sample_output_grads(model, x, call=plain_call, chunk_size=None)
    return torch.cat([grads[n].reshape(len(x), -1) for n, _ in model.named_parameters()], dim=1).T


def exact_step(theta: torch.Tensor, g: torch.Tensor, lam: float) -> torch.Tensor:
    """θ' − θ in float64 throughout, from the same float32 G (the yardstick)."""
    q, _ = torch.linalg.qr(g.double(), mode="reduced")
    return -lam * (theta - q @ (q.T @ theta))


def authors_step(theta: torch.Tensor, g: torch.Tensor, lam: float) -> torch.Tensor:
    """The authors' projection: QR of G in float64, Q cast back to float32, the update in float32."""
    q, _ = torch.linalg.qr(g.double(), mode="reduced")
    q, t32 = q.float(), theta.float()
    new = t32 - lam * (t32 - q @ (q.T @ t32))
    return new.double() - theta


def our_step(model: nn.Module, x: torch.Tensor, lam: float, path: str,
             dtype: torch.dtype = torch.float64) -> torch.Tensor:
    import copy

    edited = copy.deepcopy(model)
    params = dict(edited.named_parameters())
    before = flat(edited)
    if path == "hooks":
        OutputSpan(edited, x, params, call=plain_call, dtype=dtype).shrink(lam)
    else:
        grads = per_sample_output_grads(edited, x, call=plain_call, chunk_size=None)
        shrink_outside_span(params, grads, lam, dtype=dtype)
    return flat(edited) - before


def measure(spread: float, samples: int, lam: float, kind: str = "mlp") -> dict[str, float]:
    model, x = ill_conditioned(kind, spread, samples)
    g = gradient_matrix(model, x)
    theta = flat(model)
    exact = exact_step(theta, g, lam)
    steps = {"hooks": our_step(model, x, lam, "hooks"), "vmap": our_step(model, x, lam, "vmap"),
             "hooks, float32 sums": our_step(model, x, lam, "hooks", torch.float32),
             "vmap, float32 sums": our_step(model, x, lam, "vmap", torch.float32),
             "authors": authors_step(theta, g, lam),
             "exact, stored": (theta + exact).float().double() - theta}  # the floor: the exact step in float32
    import copy

    true_g = gradient_matrix(copy.deepcopy(model).double(), x.double())  # the float64 model's own G
    row = {"cond": float(torch.linalg.cond(true_g))}
    for name, step in steps.items():
        row[f"{name} error"] = float((step - exact).norm() / exact.norm())
        row[f"{name} moves outputs"] = float((true_g.T @ step).abs().max())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--model", choices=list(SPREADS), default="mlp")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = [measure(s, args.samples, args.lam, args.model) for s in SPREADS[args.model]]
    what = "MLP 8-64-64-3" if args.model == "mlp" else "CNN (conv, grouped conv, GroupNorm, linear head)"
    print(f"one projection, λ = {args.lam}, {args.samples} retain samples, float32 {what}; "
          f"{platform.machine()} CPU, torch {torch.__version__}")
    paths = ("hooks", "vmap", "hooks, float32 sums", "vmap, float32 sums", "authors", "exact, stored")
    print("| cond(G) | " + " | ".join(f"{p}: step error" for p in paths) + " | "
          + " | ".join(f"{p}: max ΔGᵀθ" for p in paths) + " |")
    print("|---|" + "---|" * (2 * len(paths)))
    for r in rows:
        print(f"| {r['cond']:.1e} | " + " | ".join(f"{r[f'{p} error']:.1e}" for p in paths) + " | "
              + " | ".join(f"{r[f'{p} moves outputs']:.1e}" for p in paths) + " |")


if __name__ == "__main__":
    main()
