"""Print the RBM linear theory table: original, golden, FT, RBM and forgetting-based masking.

Over-parameterised linear regression in float64; the feature overlap between
retain and forget rows grows from 0 (distinct features) upward.

    python scripts/theory_rbm.py [--overlaps 0 0.1 0.25 0.5] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # research/ lives beside the package

from research.theory import compare, make_problem  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--overlaps", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("d=400 features, 40 retain rows, 10 forget rows (15 active features each), float64")
    print("| overlap | model | remaining loss | unlearning loss | ‖w − w_golden‖ |")
    print("|---|---|---|---|---|")
    for ov in args.overlaps:
        for name, m in compare(make_problem(overlap=ov, seed=args.seed)).items():
            print(f"| {ov:.2f} | {name} | {m['remaining_loss']:.3e} | {m['unlearning_loss']:.3e} | "
                  f"{m['dist_to_golden']:.3e} |")


if __name__ == "__main__":
    main()
