"""hf_unlearn.forgetting_quality against the competition's own metric.py, on identical random confidences.

The published code (google-deepmind/unlearning_evaluation, metric.py) is CUDA-only and stops on
``assert thr_eps`` for arrays. Check it out outside this repository and make a CPU copy first:

    git clone https://github.com/google-deepmind/unlearning_evaluation /tmp/ue
    sed 's/\\.cuda()//g; s/assert thr_eps, /assert len(thr_eps), /' /tmp/ue/metric.py > /tmp/ue/metric_cpu.py
    python scripts/compare_forget_score.py --published /tmp/ue/metric_cpu.py

Prints how many per-example ε differ, the scores on the issue's constructed cases, and both timings.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import warnings

import numpy as np

from hf_unlearn import forgetting_quality as fq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--published", required=True, help="a CPU copy of the competition's metric.py")
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("published_metric", args.published)
    pub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pub)
    warnings.simplefilter("ignore", RuntimeWarning)

    def published_eps(u: np.ndarray, r: np.ndarray) -> np.ndarray:
        positive = np.median(r, 0) > np.median(u, 0)
        return pub._get_epsilons(np.where(positive, r, u), np.where(positive, u, r), pub.DELTA)

    rng = np.random.default_rng(0)
    differ = total = 0
    for n in (4, 8, 16, 32):
        for kind in ("normal", "shifted", "ties"):
            u, r = rng.normal(size=(n, 20)), rng.normal(size=(n, 20))
            if kind == "shifted":
                u += rng.uniform(0, 3, size=20)
            if kind == "ties":
                u, r = np.round(u * 2) / 2, np.round(r * 2) / 2
            differ += int((fq.epsilons(u, r) != published_eps(u, r)).sum())
            total += u.shape[1]
            assert fq.forget_score(u, r) == pub.compute_forget_score_from_confs(u, r), (n, kind)
    print(f"per-example ε: {differ} of {total} differ (N = 4, 8, 16, 32; normal, shifted, ties); every F equal")
    for n in (8, 32):
        u, r = rng.normal(size=(n, 50)), rng.normal(size=(n, 50))
        print(f"N(0,1) both kinds, 50 examples, N = {n}: ours {fq.forget_score(u, r):.3f}, "
              f"published {pub.compute_forget_score_from_confs(u, r):.3f}")
    r = rng.normal(size=(32, 50))
    for shift in (1, 10):
        u = rng.normal(size=(32, 50)) + shift
        print(f"shifted {shift}σ, N = 32: ours {fq.forget_score(u, r):.3f}, "
              f"published {pub.compute_forget_score_from_confs(u, r):.3f}")
    u, r = rng.normal(size=(32, 50)), rng.normal(size=(32, 50))
    t0 = time.perf_counter()
    pub.compute_forget_score_from_confs(u, r)
    t_pub = time.perf_counter() - t0
    t0 = time.perf_counter()
    fq.forget_score(u, r)
    print(f"50 examples, N = 32: published on the CPU {t_pub:.1f} s, ours {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
