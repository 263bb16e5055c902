"""Tuned settings on a held-out request (issue #18's acceptance experiment), on the offline digits demo.

For each request kind: tune the methods on proxy requests of the held-out request's kind and size (never on
the held-out request itself), then compare the defaults, the tuned settings and ``none`` on the held-out
request against its own Retrain references (seeds 0, 1, 2). Then tune again for another request of the same
kind, to time what the cached proxy references save. Prints markdown; writes the settings files and the
tables to --out.

    .venv-test/bin/python scripts/tune_heldout.py --trials 30 --out docs/results/tuning
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hf_unlearn import ForgetSpec
from hf_unlearn.compare import compare
from hf_unlearn.demo import DEMO_RECIPE, ensure_demo_assets
from hf_unlearn.proxies import POOL_SEED, proxy_requests
from hf_unlearn.tuning import tune

SEEDS = (0, 1, 2)


def requests(kind: str) -> tuple[ForgetSpec, ForgetSpec]:
    """(the held-out request, another request of the same kind for the second tuning)."""
    if kind == "random":
        return ForgetSpec(fraction=0.1, seed=7), ForgetSpec(fraction=0.1, seed=8)
    return ForgetSpec(classes=("3",)), ForgetSpec(classes=("5",))


def gap(comparison, method: str) -> str:
    if method not in comparison.reports:
        return f"failed ({comparison.failed.get(method)})"
    rep = comparison.reports[method]
    mean, std = (rep.avg_gap or {}).get("unlearned"), (rep.avg_gap_std or {}).get("unlearned")
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def fmt(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--methods", default="rbm,minnorm-og,salun,ft")
    ap.add_argument("--kinds", default="random,class")
    ap.add_argument("--out", default="docs/results/tuning")
    args = ap.parse_args()
    methods = tuple(args.methods.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, data = map(str, ensure_demo_assets())
    common = {"retrain_settings": DEMO_RECIPE}
    summary: dict = {}
    md = [f"Digits demo, development machine (2 CPU cores); {args.trials} trials per method, 2 proxy requests, "
          f"each trial on every proxy with seeds 0 and 1; "
          f"held-out figures: Avg.Gap mean ± std over seeds {', '.join(map(str, SEEDS))}.", ""]
    for kind in args.kinds.split(","):
        heldout, another = requests(kind)
        if kind == "class":  # the second request: a class that is neither the held-out one nor a proxy
            from hf_unlearn.config import DataSource
            from hf_unlearn.data import labelled_splits
            from hf_unlearn.hub import load_dataset_dict

            splits = labelled_splits(load_dataset_dict(DataSource(data))[0], DataSource(data))
            taken = {"3"} | {c for p in proxy_requests(heldout, splits.training(), 2, POOL_SEED)
                             for c in p.spec.fields.classes}
            another = ForgetSpec(classes=(next(str(c) for c in range(10) if str(c) not in taken),))
        t0 = time.perf_counter()
        tuning = tune(model, data, heldout, methods, trials=args.trials, output=out / f"{kind}.json", **common)
        first_s = time.perf_counter() - t0
        defaults = compare(model, data, heldout, methods, seeds=SEEDS, **common)
        tuned = compare(model, data, heldout, methods, seeds=SEEDS,
                        settings={m: t.settings for m, t in tuning.methods.items()}, **common)
        t1 = time.perf_counter()
        again = tune(model, data, another, methods, trials=args.trials, output=out / f"{kind}-second.json", **common)
        second_s = time.perf_counter() - t1
        none = gap(defaults, "none")
        refs = len(tuning.proxies) * (len(tuning.seeds) + len(tuning.validation_seeds))
        md += [f"## {heldout.describe()} (held out)", "",
               f"Proxies: {'; '.join(p['description'] for p in tuning.proxies)}.", "",
               "| method | defaults | tuned (best trial) | tuned run ships | none (untouched) | shipped ≤ none | "
               "proxy Avg.Gap: defaults → best (none) | fresh seeds: best / none | trials (pruned, failed) |",
               "|---|---|---|---|---|---|---|---|---|"]
        untouched = defaults.reports["none"].avg_gap["unlearned"]
        for m in methods:
            t = tuning.methods[m]
            shipped = tuned if t.beats_none else defaults
            name = m if t.beats_none else "none"
            ok = name in shipped.reports and shipped.reports[name].avg_gap["unlearned"] <= untouched + 1e-9
            md.append(f"| {m} | {gap(defaults, m)} | {gap(tuned, m)} | {name}: {gap(shipped, name)} | {none} | "
                      f"{'yes' if ok else 'NO'} | {fmt(t.defaults_proxy_avg_gap)} → {t.proxy_avg_gap:.2f} "
                      f"({t.none_proxy_avg_gap:.2f}) | {t.validation_avg_gap:.2f} / "
                      f"{sum(t.none_validation_avg_gaps) / len(t.none_validation_avg_gaps):.2f} | "
                      f"{t.trials} ({t.pruned}, {t.failed}) |")
        md += ["", f"Tuning: {first_s:.0f} s for the {len(methods)} methods ({tuning.reference_seconds:.1f} s of it "
               f"for the proxies' Retrain references, {tuning.references_cached} of {refs} from the cache). "
               f"A second tuning, for {another.describe()} (proxies: "
               f"{'; '.join(p['description'] for p in again.proxies)}): {second_s:.0f} s "
               f"({again.reference_seconds:.1f} s for references, {again.references_cached} of {refs} from the cache).",
               "", "Tuned settings:", "", tuning.markdown(), ""]
        summary[kind] = {"tuning_s": first_s, "second_tuning_s": second_s, "tuning": tuning.to_dict(),
                         "second": again.to_dict(), "defaults": defaults.to_dict(), "tuned": tuned.to_dict()}
        print("\n".join(md), flush=True)
    (out / "tuning.md").write_text("\n".join(md) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
