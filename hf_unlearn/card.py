"""The model card of an unlearned checkpoint, built with ``huggingface_hub.ModelCard``.

Its metadata says where the model came from (``base_model`` and revision,
``datasets``), what was done (tags ``machine-unlearning`` and the method) and
how it measured (``model-index`` results with the forget, retain and test
metrics under separate splits, which the Hub would otherwise merge). The body
records the method, settings, forget specification, seeds, versions and the
metrics table, but never the forget data: only class names, or a count and
a SHA-256 of the forget row ids.
"""

from __future__ import annotations

import json
from typing import Any

from .metrics.registry import card_metrics, gap_metrics, shown_columns
from .report import UnlearnReport
from .verdict import recipe_note, reference_line, verdict

#: model-index entries are grouped by split, in this order (the Hub would otherwise merge the splits' results)
SPLIT_ORDER = ("forget", "retain", "test")
#: how the glossary says which way a metric is better (``Metric.direction``)
DIRECTION_PHRASES = {"higher": "higher is better", "lower": "lower is better",
                     "retrain": "the closer to retrain's value, the better"}


def _is_hub_id(source: dict[str, Any]) -> bool:
    return bool(source) and not source.get("local") and "/" in str(source.get("id", ""))


def build_model_card(report: UnlearnReport, repo_id: str | None = None) -> Any:
    """A ``ModelCard`` for the unlearned model described by ``report``."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    model_src = report.sources.get("model", {})
    data_src = report.sources.get("dataset", {})
    dataset_id = data_src.get("id") if _is_hub_id(data_src) else None
    # the model-index describes the weights in the repository: over several seeds, the first seed's run
    unlearned = (report.per_seed[0]["metrics"] if report.per_seed else report.metrics).get("unlearned") or {}
    evals = []
    by_split = sorted(card_metrics(), key=lambda m: SPLIT_ORDER.index(m.card.split) if m.card.split in SPLIT_ORDER
                      else len(SPLIT_ORDER))
    audited = (report.audit or {}).get("metrics") or {}
    for metric in by_split:
        # an audit's scores are the population's (N unlearned runs against N retrained), stated with N
        value = audited.get(metric.key) if metric.scope == "audit" else unlearned.get(metric.key)
        if value is None:
            continue
        name = metric.card.name.format(n=report.audit["n_models"]) if metric.scope == "audit" else metric.card.name
        evals.append(EvalResult(
            task_type="image-classification", task_name="Machine unlearning",
            dataset_type=dataset_id or "local", dataset_name=dataset_id or str(data_src.get("id", "local")),
            dataset_config=data_src.get("config"), dataset_split=metric.card.split,
            dataset_revision=data_src.get("commit"), metric_type=metric.card.type, metric_name=name,
            metric_value=round(float(value), 4)))
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        base_model=model_src.get("id") if _is_hub_id(model_src) else None,
        datasets=[dataset_id] if dataset_id else None,
        tags=["machine-unlearning", "hf-unlearn", report.method],
        model_name=repo_id.split("/")[-1] if repo_id else "unlearned-model",
        eval_results=evals or None,
        base_model_revision=model_src.get("commit") or model_src.get("revision"),
    )
    return ModelCard.from_template(data, template_str=_TEMPLATE, **_sections(report))


def _sections(report: UnlearnReport) -> dict[str, str]:
    from .forget import available_kinds, get_kind

    f = report.forget
    if f.get("class_names"):
        forget = f"class-wise: the classes **{', '.join(map(str, f['class_names']))}**"
    else:
        forget = (f"{f.get('kind')}: {f.get('n_forget')} training rows ({f.get('description')}); "
                  f"SHA-256 of the sorted forget row ids: `{f.get('forget_ids_sha256')}`")
    src = report.sources.get("model", {})
    dsrc = report.sources.get("dataset", {})
    settings = {k: v for k, v in report.settings.items() if k not in ("retrain_reference", "mask")}
    gap, gap_over = "", ", ".join(m.label for m in gap_metrics())
    intro = "Metrics in percent, over whole splits."
    if report.seeds and len(report.seeds) > 1:
        intro += (f" Each value is the mean ± standard deviation over the seeds {', '.join(map(str, report.seeds))}"
                  f", each seed against its own Retrain; the weights in this repository are seed {report.seed}'s run,"
                  " whose own values are the model-index results.")
    if report.metrics.get("retrain"):
        intro += (' "retrain" is the model trained again without the forgotten data (the gold standard); '
                  f"Avg.Gap is the mean distance to it over {gap_over} (lower is closer).")
    if report.avg_gap:
        gap = (f"Avg.Gap to the retrained reference (mean |Δ| over {gap_over}): "
               f"**{report.avg_gap.get('unlearned', float('nan')):.2f}** (original model: "
               f"{report.avg_gap.get('original', float('nan')):.2f}).")
        note = recipe_note(report)
        if note:
            gap += f" **{note}.**"
    rule = get_kind(f["kind"]).test_rule if f.get("kind") in available_kinds() else None
    rte = f"{report.rte_s:.1f} s"
    if report.rte_fraction:
        rte += f" ({report.rte_fraction:.1%} of retraining, {report.retrain_s:.1f} s)"
    return {
        "method": report.method,
        "base": f"`{src.get('id')}` (revision `{src.get('commit') or src.get('revision') or 'local'}`)",
        "dataset": (f"`{dsrc.get('id')}` (config `{dsrc.get('config') or 'default'}`, revision "
                    f"`{dsrc.get('commit') or dsrc.get('revision') or 'local'}`), splits "
                    f"`{report.data.get('train_split')}` / `{report.data.get('test_split')}`"),
        "forget": forget,
        "sizes": (f"{report.data.get('n_forget')} forget / {report.data.get('n_retain')} retain / "
                  f"{report.data.get('n_test')} test rows" + (f" (TA is measured on {rule})" if rule else "")),
        "settings": json.dumps(settings, indent=2, default=str),
        "seed": report.seeds_text(),
        "table": report.markdown(),
        "intro": intro,
        "glossary": "\n".join(f"- **{m.label}**: {m.meaning} ({DIRECTION_PHRASES[m.direction]})."
                              for m in shown_columns(report.metrics.values())),
        "gap": gap,
        "rte": rte,
        "reference": reference_line(report) if report.retrain else "",
        "verdict": verdict(report),
        "audit": _audit_section(report),
        "lineage": _lineage_section(report),
        "versions": ", ".join(f"{k} {v}" for k, v in report.versions.items()),
    }


def _applied_to(model: dict) -> str:
    """A Hub model by id; a local checkpoint without its path (a folder name may name the request)."""
    return f"`{model.get('id')}`" if model.get("commit") else "a local checkpoint"


def _lineage_section(report: UnlearnReport) -> str:
    """The deletion requests this model has served, as counts and digests (the rows stay in the local ledger)."""
    lineage = report.lineage or []
    if len(lineage) < 2:
        return ""
    rows = [f"| {i} | {r.get('description')} | {r.get('n_rows')} | `{str(r.get('forget_ids_sha256'))[:16]}…` | "
            f"{r.get('method')} | {_applied_to(r.get('model') or {})} |" for i, r in enumerate(lineage, 1)]
    return ("## Deletion requests served\n\nThis model has served these requests in order; each run forgot the "
            "union of all of them so far, and Retrain was trained without every one. Rows are given as counts and "
            "SHA-256 digests of the sorted row ids only.\n\n| # | request | rows | digest | method | applied to |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def _audit_section(report: UnlearnReport) -> str:
    """The forgetting audit's scores and what they mean, when the checkpoint was audited (hf-unlearn audit)."""
    from .audit import explain

    if not report.audit:
        return ""
    n = report.audit["n_models"]
    return (f"## Forgetting audit ({n} unlearned and {n} retrained models)\n\n{explain(report.audit)}\n\n"
            "The per-example evidence is in `audit.json` (ε of every forget example) and `audit_confidences.npz` "
            "(both kinds' confidence matrices, no image data), from which anyone can recompute the score.\n")


_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

This model is {{ base }} after **machine unlearning** with **{{ method }}** (hf-unlearn):
it was edited to forget part of its training data.

- Training data: {{ dataset }}
- Forgotten: {{ forget }}
- Sizes: {{ sizes }}
- Seeds: {{ seed }}
- Unlearning time: {{ rte }}

## Results

**Verdict:** {{ verdict }}.

{{ intro }}

{{ glossary }}

{{ table }}

{{ gap }}

{{ reference }}

{{ audit }}

{{ lineage }}

## Method settings

```json
{{ settings }}
```

## Reproducibility

Library versions: {{ versions }}. The full record is in `unlearning_report.json`.
"""
