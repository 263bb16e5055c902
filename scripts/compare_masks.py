"""FT, SalUn, RBM and Retrain on a CPU-sized CIFAR-10 subset: class-wise and random-10 % forgetting.

Trains (once, cached) a small transformers ResNet on the subset, then for each
scenario and seed retrains on D_r (the reference) and runs each method,
printing UA, RA, TA, MIA-efficacy, MIA-loss, Avg.Gap and RTE as mean ± std.

    python scripts/compare_masks.py                       # the README table
    python scripts/compare_masks.py --sweep rbm --seeds 0  # hyper-parameter sweep of one method
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    cached_original,
    cifar10_subset,
    compact_cells,
    compact_labels,
    mean_std,
    small_resnet_and_processor,
)

from hf_unlearn import ForgetSpec, UnlearnError, unlearn  # noqa: E402
from hf_unlearn.metrics import avg_gap  # noqa: E402

RECIPE = {"epochs": 30, "lr": 0.05, "batch_size": 128, "optimizer": "sgd", "momentum": 0.9,
          "weight_decay": 5e-4, "lr_schedule": "cosine", "bn_policy": "train", "augment": "none"}
#: Settings each method runs with in the comparison (from the sweep recorded in the README).
METHOD_SETTINGS = {
    "ft": {"epochs": 5, "lr": 0.01},
    "salun": {"epochs": 5, "lr": 0.005, "rho": 0.3},  # best mean Avg.Gap of its sweep (README)
    "rbm": {"epochs": 5, "lr": 0.01, "rho": 0.5, "reset_alpha": 0.5},  # best mean Avg.Gap of its sweep (README)
}
SWEEPS = {
    "rbm": {"lr": [0.005, 0.01], "rho": [0.5, 0.7, 0.9], "reset_alpha": [0.0, 0.5]},
    "salun": {"lr": [0.005, 0.01], "rho": [0.3, 0.5, 0.7]},
    "ft": {"lr": [0.01, 0.05, 0.1]},
}
FORGET_CLASS = "cat"


def scenarios(seed: int) -> dict[str, ForgetSpec]:
    return {"class-wise (cat)": ForgetSpec(classes=(FORGET_CLASS,), seed=seed),
            "random 10 %": ForgetSpec(fraction=0.1, seed=seed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class-train", type=int, default=500)
    ap.add_argument("--per-class-test", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHOD_SETTINGS))
    ap.add_argument("--sweep", choices=sorted(SWEEPS), help="grid-search one method instead (Avg.Gap per setting)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()

    t_start = time.perf_counter()
    dsd = cifar10_subset(args.per_class_train, args.per_class_test)
    names = dsd["train"].features["label"].names

    def build(path: Path) -> None:
        from hf_unlearn.training import train_original

        model, proc = small_resnet_and_processor(names)
        info = train_original(model, proc, dsd, RECIPE, seed=0)
        print(f"original trained: test accuracy {info['test_accuracy']:.2f} %", flush=True)
        model.save_pretrained(path)
        proc.save_pretrained(path)

    original = str(cached_original("cifar10-subset-resnet", {"recipe": RECIPE, "n": args.per_class_train,
                                                             "hidden": [32, 64, 128]}, build))
    runs: list[dict] = []
    for seed in args.seeds:
        for scen, spec in scenarios(seed).items():
            ref = unlearn(original, dsd, spec, "retrain", seed=seed, **RECIPE).report
            runs.append({"scenario": scen, "seed": seed, "method": "original", "metrics": ref.metrics["original"],
                         "gap": avg_gap(ref.metrics["original"], ref.metrics["unlearned"]), "rte": None,
                         "settings": {}})
            runs.append({"scenario": scen, "seed": seed, "method": "retrain", "metrics": ref.metrics["unlearned"],
                         "gap": 0.0, "rte": ref.rte_s, "settings": RECIPE})
            if args.sweep:
                grid = SWEEPS[args.sweep]
                configs = [dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())]
                todo = [(args.sweep, {**METHOD_SETTINGS[args.sweep], **c}) for c in configs]
            else:
                todo = [(m, METHOD_SETTINGS.get(m, {})) for m in args.methods]
            for method, settings in todo:
                try:
                    rep = unlearn(original, dsd, spec, method, seed=seed, reference=ref, **settings).report
                except UnlearnError as exc:  # a diverging setting is a sweep result, not a crash
                    print(f"  {scen} seed {seed} {method} {settings}: {exc}", file=sys.stderr, flush=True)
                    continue
                runs.append({"scenario": scen, "seed": seed, "method": method, "settings": settings,
                             "metrics": rep.metrics["unlearned"], "gap": rep.avg_gap["unlearned"],
                             "rte": rep.rte_s, "original": rep.metrics["original"]})
                print(f"  {scen} seed {seed} {method} {settings}: Avg.Gap {rep.avg_gap['unlearned']:.2f}",
                      file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t_start
    print(f"\nCIFAR-10 subset: {args.per_class_train * 10} train / {args.per_class_test * 10} test images, "
          f"32 px; transformers ResNet (basic blocks, widths 32-64-128); original recipe {RECIPE['epochs']} "
          f"epochs SGD cosine, no augmentation (the model interpolates D, the regime the seed papers study); "
          f"seeds {args.seeds}; {platform.processor() or platform.machine()}, "
          f"{elapsed / 60:.1f} min in all\n")
    key = (lambda r: (r["method"], json.dumps(r["settings"], sort_keys=True))) if args.sweep else \
        (lambda r: (r["method"], ""))
    for scen in scenarios(0):
        print(f"**{scen}**\n")
        labels = compact_labels()
        print("| method | settings | " + " | ".join(labels) + " | Avg.Gap | RTE (s) |")
        print("|---|---|" + "---|" * (len(labels) + 2))
        groups: dict = {}
        for r in runs:
            if r["scenario"] == scen:
                groups.setdefault(key(r), []).append(r)
        for (method, sett), rs in groups.items():
            cells = compact_cells(rs)
            print(f"| {method} | {sett or ''} | " + " | ".join(cells)
                  + f" | {mean_std([r['gap'] for r in rs])} | {mean_std([r['rte'] for r in rs])} |")
        print()
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, default=str))


if __name__ == "__main__":
    main()
