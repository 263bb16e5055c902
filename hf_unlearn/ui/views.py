"""What the app shows of a run: the metrics table, the method-settings table, the plots and the image grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def settings_rows(method: str) -> list[list[Any]]:
    """The method's documented settings as editable table rows: name, value, meaning."""
    from ..methods import get_method

    return [[s["name"], str(s["default"]), s["help"]] for s in get_method(method).describe_settings()]


def settings_from_rows(method: str, rows: Any) -> dict[str, str]:
    """Only the settings the user changed (as strings; the method converts and checks them)."""
    defaults = {r[0]: r[1] for r in settings_rows(method)}
    if hasattr(rows, "values"):
        rows = rows.values.tolist()
    if isinstance(rows, dict):  # the API's form of a table
        rows = rows.get("data")
    out = {}
    for row in rows or []:
        if len(row) >= 2 and row[0] in defaults and str(row[1]).strip() != defaults[row[0]]:
            out[str(row[0])] = str(row[1]).strip()
    return out


def run_status(report: Any) -> str:
    """What a finished run says above its table: the request, the verdict and where Retrain came from."""
    from ..verdict import reference_line, verdict

    text = f"Done: {report.method}, forget {report.forget.get('description')}."
    if report.values_note():
        text += f" {report.values_note()}."
    text += f"\n\n**Verdict** ({report.seeds_text()}): {verdict(report)}."
    if report.newest_request:  # a model that served earlier requests (its ledger was read)
        text += "\n\n" + report.requests_text().replace("\n  ", "\n- ")
    tuned = report.settings.get("tuned")
    if tuned:
        text += (f"\n\n**Settings:** {tuned.get('for')}'s tuned settings ({tuned.get('source')}): "
                 f"{tuned.get('summary')}.")
    if report.seeds and len(report.seeds) > 1:
        text += (f"\n\nThe table gives mean ± std over the seeds; the plots, the images and the model Push "
                 f"sends are seed {report.seed}'s run.")
    return text + (f"\n\n{reference_line(report)}." if report.retrain else "")


def metric_headers() -> list[str]:
    """The empty table's headers before a run: every registered table metric (a run shows those it has)."""
    from ..metrics import table_metrics

    return ["model", *(m.label for m in table_metrics()), "Avg.Gap"]


def metrics_table(report: Any) -> dict[str, Any]:
    """The report's metrics table (a column per registered metric, then Avg.Gap), rounded for the page."""
    headers, rows = report.table_rows()
    return {"headers": headers,
            "data": [[row[0], *(None if v is None else round(float(v), 2) for v in row[1:])] for row in rows]}


def mia_histogram(result: Any, path: Path) -> Path:
    """True-label confidence of forget vs retain vs test rows, before and after (the MIA feature)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    bins = np.linspace(0, 1, 26)
    for ax, key in zip(axes, ("original", "unlearned"), strict=True):
        ev = result.evaluations[key]
        for split in ("forget", "retain", "test"):
            ax.hist(ev.outputs[split].true_prob, bins=bins, alpha=0.5, density=True, label=split)
        ax.set_title(f"{key}: true-label confidence")
        ax.set_xlabel("softmax probability of the true label")
    axes[0].set_ylabel("density")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def forget_gallery(result: Any, limit: int = 16) -> list[tuple[Any, str]]:
    """Forget-set images with the prediction before → after."""
    from PIL import Image

    data = result.data
    names = data.class_names
    before = result.evaluations["original"].outputs["forget"].predictions
    after = result.evaluations["unlearned"].outputs["forget"].predictions
    items = []
    for i in range(min(limit, len(data.forget))):
        px = data.forget.pixels(i)
        if px.dtype.is_floating_point:
            px = (px - px.min()) / (px.max() - px.min() + 1e-8) * 255
        arr = px.to("cpu").byte().permute(1, 2, 0).numpy()
        img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).resize((96, 96), Image.NEAREST)
        truth = names[int(data.forget.labels[i])]
        items.append((img, f"true {truth}: {names[int(before[i])]} → {names[int(after[i])]}"))
    return items


def comparison_headers() -> list[str]:
    from ..compare import COLUMNS

    return ["method", *(h for _, h in COLUMNS)]


def comparison_table(comparison: Any) -> dict[str, Any]:
    """The comparison's rows as "mean ± std" text (what comparison.md shows), for the page."""
    from ..metrics.registry import fmt_pm

    headers = comparison_headers()
    gap = comparison.first.gap_label()
    return {"headers": [gap if h == "Avg.Gap" else h for h in headers],
            "data": [[name, *(fmt_pm(m, s) for m, s in cells)] for name, cells in comparison.rows()]}


def comparison_verdicts(comparison: Any) -> str:
    from ..verdict import comparison_verdict, verdict

    overall = comparison_verdict(comparison.reports)
    head = f"### {overall}.\n\n" if overall else ""
    failed = [f"**{name}**: failed ({why}); it has no row." for name, why in comparison.failed.items()]
    return head + "\n\n".join([*(f"**{name}**: {verdict(report)}." for name, report in comparison.reports.items()),
                                *failed])


#: how many of a session's results keep their model (for Push); older entries can still be viewed
KEEP_RESULTS = 5


def pushable(result: Any) -> Any:
    """What Push needs of a run (the model, its processor, report and mask), without the data, the untouched
    model and every seed's model, which the session would otherwise hold on to (on the GPU) for each run."""
    import dataclasses

    return dataclasses.replace(result, evaluations={}, data=None, original_model=None, seed_results=[])


def remember(state: dict[str, Any], label: str, view: str, shown: tuple[Any, ...], result: Any) -> str:
    """Add a finished run or comparison to the session's history; returns its (unique) label.

    The last :data:`KEEP_RESULTS` runs keep what Push needs; older ones can be viewed, not pushed.
    """
    history = state.setdefault("history", [])
    entry = f"#{len(history) + 1} {label}"
    history.append({"label": entry, "view": view, "shown": shown,
                    "result": None if result is None else pushable(result)})
    for old in history[:-KEEP_RESULTS]:
        old["result"] = None
    return entry


def history_choices(state: dict[str, Any]) -> list[str]:
    """The session's runs, newest first."""
    return [e["label"] for e in reversed(state.get("history", []))]


def audit_headers() -> list[str]:
    """The Audit view's score table's columns (before an audit and after)."""
    return ["score", "value", "what it means"]


def audit_table(audit: Any) -> dict[str, Any]:
    """The audit's scores (the registry's audit metrics) with what each means, for the page."""
    from ..audit import score_text
    from ..metrics import audit_metrics

    return {"headers": audit_headers(),
            "data": [[m.label, score_text(audit.metrics.get(m.key)), m.meaning] for m in audit_metrics()]}


def audit_status(audit: Any) -> str:
    """What a finished audit says above its figure: the score next to its ceiling, in words."""
    from ..audit import score_text

    report = audit.report
    f, top = (score_text(audit.metrics.get(k)) for k in ("forget_quality", "forget_quality_ceiling"))
    return (f"Done: audit of **{report.method}**, forget {report.forget.get('description')}: "
            f"{audit.n_models} unlearned runs against {audit.n_models} retrained references "
            f"({audit.cached_references} read from the cache), {audit.seconds:.0f} s.\n\n"
            f"### Forgetting quality F = {f} (ceiling at N = {audit.n_models}: {top})\n\n{audit.explain()}")
