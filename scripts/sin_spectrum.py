"""The singular values of MinNorm-OG's G on the data-poisoning network, and how many directions each cut-off keeps.

For each seed's original model (``reproduce_sin.py``'s, trained once and
cached), G holds the 50 retain points' output gradients. It is computed twice:
from the float32 model (what MinNorm-OG uses) and from a float64 copy. A
singular value of the float32 G that stands above ‖G₃₂ − G₆₄‖₂ (float32's
noise) is a real direction; below it, noise. The table gives, per seed,
cond(G), how many directions stand above the noise, and how many each
cut-off keeps (a singular value σ is kept when σ ≥ cut-off · σ_max).

    python scripts/sin_spectrum.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reproduce_sin import original_models  # noqa: E402

from hf_unlearn.methods.minnorm_og.gradients import CUTOFFS, per_sample_output_grads  # noqa: E402
from research.sin_experiment import _Single  # noqa: E402


def gradient_matrix(single: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    first = torch.zeros(x.shape[0], dtype=torch.long)
    grads = per_sample_output_grads(single, x, first, call=lambda m, v: m(v), chunk_size=None)
    return torch.cat([g.reshape(len(x), -1) for g in grads.values()], dim=1).double()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the --quick originals (3 seeds, 20,000 epochs)")
    args = ap.parse_args()
    seeds, epochs = (3, 20_000) if args.quick else (10, 100_000)
    model, data = original_models(seeds, epochs, torch.device("cpu"))
    print(f"data-poisoning originals: {seeds} seeds, {epochs:,} epochs; σ kept when σ ≥ cut-off · σ_max")
    names = list(CUTOFFS)
    print("| seed | cond(G) | σ above float32 noise | " + " | ".join(f"kept by {n}" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for s in range(seeds):
        single = _Single(model, s)
        g32 = gradient_matrix(single, data.x_r[s])
        g64 = gradient_matrix(copy.deepcopy(single).double(), data.x_r[s].double())
        sv = torch.linalg.svdvals(g32)
        noise = float(torch.linalg.matrix_norm(g32 - g64, ord=2))
        cells = [str(int((sv >= cut(torch.float32, len(sv)) * sv[0]).sum())) for cut in CUTOFFS.values()]
        print(f"| {s} | {float(sv[0] / sv[-1]):.1e} | {int((sv > noise).sum())} of {len(sv)} | " + " | ".join(cells)
              + " |")


if __name__ == "__main__":
    main()
