"""A run's result in one sentence: what it forgot, what it kept, how close it came to Retrain, how fast.

A table of eight percentages does not say whether a deletion request was
served; the verdict does, in the terms a reader checks first: the forgotten
data's accuracy before and after next to Retrain's, the retained accuracy's
distance to Retrain's, Avg.Gap next to the untouched model's, and the speed-up
over retraining. When the edit moved the model *away* from Retrain (Avg.Gap
above the untouched model's) it says so first, in plain words. The CLI, the
app and the model card all print this one function's text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: within this many points of Retrain's value a quantity counts as matched ("forgot", "kept")
CLOSE = 5.0


def _get(report: Any, model: str, key: str) -> float | None:
    value = (report.metrics.get(model) or {}).get(key)
    return None if value is None else float(value)


def _what(report: Any) -> tuple[str, str, str]:
    """(what was forgotten, the metric that shows it, that metric's label)."""
    f = report.forget
    names = f.get("class_names") or []
    if names and _get(report, "unlearned", "forget_class_test_acc") is not None:
        what = f"class{'es' if len(names) > 1 else ''} {', '.join(map(str, names))}"
        return what, "forget_class_test_acc", "forget-class test accuracy"
    return f"the {f.get('n_forget')} forget rows", "forget_acc", "forget accuracy"


def forgetting_clause(report: Any) -> str:
    """ "forgot class 3 (forget-class test accuracy 97.3 → 0.0; Retrain 0.0)" and its kin."""
    what, key, label = _what(report)
    before, after, gold = (_get(report, m, key) for m in ("original", "unlearned", "retrain"))
    if after is None:
        return f"forgetting of {what} was not measured"
    numbers = f"{label} {before:.1f} → {after:.1f}" if before is not None else f"{label} {after:.1f}"
    if gold is None:
        return f"{what}: {numbers} (no Retrain reference to judge it against)"
    numbers += f"; Retrain {gold:.1f}"
    if abs(after - gold) <= CLOSE:
        return f"forgot {what} ({numbers})"
    if before is not None and abs(after - gold) < abs(before - gold) / 2:
        return f"partly forgot {what} ({numbers})"
    return f"did not forget {what} ({numbers})"


def keeping_clause(report: Any) -> str | None:
    """ "kept RA within 0.8 points of Retrain" or how far RA fell from it (None without a reference)."""
    ra, gold = _get(report, "unlearned", "ra"), _get(report, "retrain", "ra")
    if ra is None or gold is None:
        return None
    gap = ra - gold
    if abs(gap) <= CLOSE:
        return f"kept RA within {abs(gap):.1f} points of Retrain"
    return f"RA is {abs(gap):.1f} points {'below' if gap < 0 else 'above'} Retrain's ({ra:.1f} against {gold:.1f})"


def gap_clause(report: Any) -> tuple[str | None, bool]:
    """ "Avg.Gap 0.66, against 50.15 for the untouched model", and whether the edit moved away from Retrain."""
    gaps = report.avg_gap or {}
    ours, untouched = gaps.get("unlearned"), gaps.get("original")
    if ours is None:
        return None, False
    if untouched is None:
        return f"Avg.Gap {ours:.2f}", False
    worse = ours > untouched
    return f"Avg.Gap {ours:.2f}, against {untouched:.2f} for the untouched model", worse


def speed_clause(report: Any) -> str | None:
    """ "18× faster than retraining" (or slower), when Retrain was timed."""
    if not report.retrain_s or not report.rte_s:
        return None
    ratio = report.retrain_s / report.rte_s
    if ratio >= 1:
        return f"{ratio:.0f}× faster than retraining" if ratio >= 10 else f"{ratio:.1f}× faster than retraining"
    return f"{1 / ratio:.1f}× slower than retraining"


def verdict(report: Any) -> str:
    """The run in one sentence (several seeds: of the means). Further from Retrain than before says so first."""
    from .methods import NONE

    if report.method == NONE:
        return _none_verdict(report)
    gap, worse = gap_clause(report)
    parts = [forgetting_clause(report), keeping_clause(report), gap, speed_clause(report)]
    text = "; ".join(p for p in parts if p)
    if worse:
        text = ("further from Retrain than the untouched model: this edit made the model less like one trained "
                "without the forget data. " + text[0].upper() + text[1:])
    if report.seeds and len(report.seeds) > 1:
        text += f" (means over {len(report.seeds)} seeds)"
    note = recipe_note(report)
    return text + (f". {note}" if note else "")


def _none_verdict(report: Any) -> str:
    """``none`` edits nothing: what the untouched model already does, against Retrain."""
    gap = (report.avg_gap or {}).get("unlearned")
    text = "left the model as it is (the baseline every edit must beat): " + forgetting_clause(report)
    if gap is not None:
        text += f"; Avg.Gap {gap:.2f}"
    note = recipe_note(report)
    return text + (f". {note}" if note else "")


def best_choice(reports: Mapping[str, Any]) -> tuple[str | None, float | None, float | None]:
    """(the edit closest to Retrain, its Avg.Gap, the untouched model's Avg.Gap) over a comparison's reports
    (means over seeds); the untouched model's is ``none``'s row, else the reports' own baseline."""
    from .methods import NONE

    gaps = {name: (rep.avg_gap or {}).get("unlearned") for name, rep in reports.items()}
    untouched = gaps.get(NONE)
    if untouched is None:
        untouched = next(((rep.avg_gap or {}).get("original") for rep in reports.values()
                          if (rep.avg_gap or {}).get("original") is not None), None)
    edits = {n: g for n, g in gaps.items() if n != NONE and g is not None and math.isfinite(g)}
    if not edits:
        return None, None, untouched
    best = min(edits, key=lambda n: edits[n])
    return best, edits[best], untouched


def comparison_verdict(reports: Mapping[str, Any]) -> str | None:
    """A comparison in one sentence: the edit closest to Retrain, or, when no edit came closer than leaving the
    model alone, the advice not to edit it (None without a Retrain reference)."""
    best, gap, untouched = best_choice(reports)
    if best is None or untouched is None:
        return None
    if gap >= untouched:
        return (f"Better to leave the model alone: no method came closer to Retrain than the untouched model "
                f"(Avg.Gap {untouched:.2f}; the best edit, {best}, {gap:.2f}). We recommend not editing the model: "
                "every edit here leaves it less like one trained without the forget data. Tuning the methods on "
                "proxy requests (hf-unlearn tune) may find settings that do better")
    return (f"Closest to Retrain: {best} (Avg.Gap {gap:.2f}, against {untouched:.2f} for leaving the model "
            "alone)")


def recipe_note(report: Any) -> str | None:
    """What to say when Retrain's recipe was not (all) the original's; None when it was given whole."""
    r = report.retrain or {}
    if r.get("recipe_source") == "default":
        return ("Retrain used hf-unlearn's default recipe, as the original recipe is unknown: every distance is to "
                "that guess")
    if r.get("recipe_source") == "partial":
        given = ", ".join(r.get("recipe_given") or []) or "some settings"
        return (f"Retrain's recipe is only partly the original's (given: {given}; the rest are hf-unlearn's "
                "defaults): every distance is to that partly guessed recipe")
    return None


def reference_line(report: Any) -> str:
    """Where the Retrain reference came from: its start, the base's commit, the recipe and its source, cached."""
    r = report.retrain or {}
    if r.get("from") == "base":
        base = r.get("base") or {}
        ident = base.get("commit") or base.get("digest") or "?"
        start = (f"fine-tuned from the pre-trained base {base.get('id')} at {ident[:12]} "
                 f"(named by {'the model card' if r.get('named_by') == 'model card' else 'retrain_base'}), "
                 "with a new head")
    else:
        start = "trained from scratch (random initialisation)"
    recipe = r.get("recipe") or {}
    brief = ", ".join(f"{k} {recipe[k]}" for k in ("epochs", "lr", "batch_size", "optimizer") if k in recipe)
    source = {"given": "the given recipe",
              "partial": f"a recipe PARTLY hf-unlearn's defaults (given: {', '.join(r.get('recipe_given') or [])})"
              }.get(r.get("recipe_source"), "hf-unlearn's DEFAULT recipe (the original recipe is unknown)")
    cached = r.get("cached")
    if isinstance(cached, list):
        when = (f"{sum(cached)} of {len(cached)} seeds read from the reference cache" if any(cached)
                else "trained for this run")
    else:
        when = "read from the reference cache" if cached else "trained for this run"
    return f"Retrain reference: {start}, with {source} ({brief}); {when}"
