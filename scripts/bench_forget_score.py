"""Time the forgetting-quality score (hf_unlearn.forgetting_quality) at the competition's scale.

    python scripts/bench_forget_score.py [--models 32] [--examples 5000]

Prints the seconds to score N unlearned against N retrained models over the forget examples (random
confidences: half the examples indistinguishable, half shifted), and the score.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hf_unlearn import forgetting_quality as fq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=32)
    ap.add_argument("--examples", type=int, default=5000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    retrained = rng.normal(size=(args.models, args.examples))
    unlearned = rng.normal(size=(args.models, args.examples))
    unlearned[:, : args.examples // 2] += rng.uniform(0, 3, size=args.examples // 2)
    t0 = time.perf_counter()
    score = fq.forget_score(unlearned, retrained)
    seconds = time.perf_counter() - t0
    print(f"N = {args.models}, {args.examples} forget examples: F = {score:.4f} in {seconds:.1f} s "
          f"({os.cpu_count()} CPU cores)")


if __name__ == "__main__":
    main()
