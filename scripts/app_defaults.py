"""What each method's app defaults do on the demo: forget digit 3 (seed 0) against the Retrain reference, and print
the forgotten digit's test accuracy, the other digits' (TA) and Avg.Gap; ``--epochs N`` reruns them at N epochs.

The form's notes beside the methods (``hf_unlearn.ui.views.METHOD_NOTES``) quote these figures.

    python scripts/app_defaults.py [--epochs 20] [--methods ft ga]
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    from hf_unlearn.api import unlearn
    from hf_unlearn.demo import DEMO_RECIPE, DEMO_SEED, ensure_demo_assets
    from hf_unlearn.methods import available_methods

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="*", default=[m for m in available_methods() if m not in ("retrain", "none")])
    ap.add_argument("--epochs", type=int, default=0, help="0: each method's default")
    args = ap.parse_args()
    model, data = ensure_demo_assets()
    for method in args.methods:
        settings = {"epochs": args.epochs} if args.epochs else {}
        t0 = time.perf_counter()
        result = unlearn(str(model), str(data), forget="3", method=method, reference="retrain",
                         retrain_settings=DEMO_RECIPE, seed=DEMO_SEED, **settings)
        m = result.report.metrics["unlearned"]
        print(json.dumps({"method": method, "epochs": result.report.settings.get("epochs"),
                          "forgotten_digit_test_acc": round(m["per_class_test_acc"][3], 1), "TA": round(m["ta"], 1),
                          "avg_gap": round(result.report.avg_gap["unlearned"], 2),
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
