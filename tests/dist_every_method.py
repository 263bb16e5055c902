"""Run by tests/test_distributed.py under `accelerate launch`: every method through the Python API.

Writes {method: metrics, "processes": N} to the path in argv[3] (main process only).
"""

from __future__ import annotations

import json
import sys

from accelerate import PartialState

from hf_unlearn import available_methods, unlearn


def main() -> None:
    model, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
    results: dict = {}
    for name in available_methods():
        epochs = {"epochs": 1} if name != "none" else {}  # none has no settings
        res = unlearn(model, data, "3", method=name, cpu=True, seed=0, **epochs)
        results[name] = res.report.metrics["unlearned"]
        results["processes"] = res.report.data["processes"]
    if PartialState().is_main_process:
        with open(out, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
