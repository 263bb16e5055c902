"""The audits of the issue on the digits demo, timed: RBM and FT at N = 32 on class 3 (cold: a fresh reference
cache, so the first audit trains the 32 references and the second reads them), and a random 10 % forget set for
FT, RBM, MinNorm-OG and SalUn; ``none`` (the untouched model) on both, as the floor. Prints each score with its
ceiling and wall time; writes each audit's files (without the checkpoint) under --output.

    python scripts/audit_demo.py --output docs/results/audit [--n-models 32] [--cache /tmp/fresh-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--output", required=True)
    p.add_argument("--n-models", type=int, default=32)
    p.add_argument("--cache", help="a fresh HF_UNLEARN_CACHE (the cold figures need one)")
    p.add_argument("--only", choices=("class", "random"), help="run one of the two parts")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from common import device_name

    from hf_unlearn.audit import audit
    from hf_unlearn.demo import DEMO_RECIPE, ensure_demo_assets
    from hf_unlearn.output import write_files

    model, data = (str(x) for x in ensure_demo_assets()[:2])  # the demo itself stays where it is
    if args.cache:  # the references (and decoded tensors) go to a fresh cache: the cold figures
        os.environ["HF_UNLEARN_CACHE"] = args.cache
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    plan = []
    if args.only in (None, "class"):
        plan += [("class3", 3, m) for m in ("rbm", "ft", "rbm", "none")]
    if args.only in (None, "random"):
        plan += [("random10", {"fraction": 0.1, "seed": 0}, m) for m in ("ft", "rbm", "minnorm-og", "salun", "none")]
    rows = []
    for request, forget, method in plan:
        t0 = time.perf_counter()
        result = audit(model, data, forget, method, n_models=args.n_models, retrain_settings=DEMO_RECIPE)
        wall = time.perf_counter() - t0
        folder = out / f"{request}-{method}"
        if not folder.exists():  # the second RBM audit on class 3 is the cached timing only
            folder.mkdir()
            write_files(folder, result.files())
        row = {"request": request, "method": method, "n_models": args.n_models, **result.metrics,
               "avg_gap": result.report.avg_gap["unlearned"], "avg_gap_std": result.report.avg_gap_std["unlearned"],
               "cached_references": result.cached_references, "wall_s": round(wall, 1), "machine": device_name()}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / f"summary-{args.only or 'all'}.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
