"""What the app shows of a run: the metrics table, the method-settings table, the plots and the image grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def settings_rows(method: str) -> list[list[Any]]:
    """The method's documented settings as editable table rows: name, value, meaning."""
    from ..methods import get_method

    return [[s["name"], str(s["default"]), s["help"]] for s in get_method(method).describe_settings()]


def settings_from_rows(method: str, rows: Any) -> dict[str, str]:
    """Only the settings the user changed (as strings; the method converts and checks them).

    A table that lists exactly another method's settings is not this method's to read: an API caller who
    changes only the method sends the form's first table (RBM's), whose lr would otherwise become GA's."""
    from ..methods import available_methods
    from .form import table_rows

    defaults = {r[0]: r[1] for r in settings_rows(method)}
    pairs = table_rows(rows)
    names = {name for name, _ in pairs}
    others = ({r[0] for r in settings_rows(m)} for m in available_methods() if m != method)
    if names != set(defaults) and any(names == other for other in others):
        return {}
    return {name: value for name, value in pairs if name in defaults and value != defaults[name]}


def error_html(message: str) -> str:
    """A failure as the page shows it: one line in a red box, never a traceback."""
    import html

    return f'<div class="hfu-error"><b>Error:</b> {html.escape(message, quote=False)}</div>'


#: what a cancelled job leaves: every result panel empty, and this
CANCELLED = ('<div class="hfu-cancelled"><b>Cancelled.</b> The job was stopped and nothing was kept; the form '
             "is as you left it: change it or press the button again.</div>")

#: what the demo is, for the line under the sources
DEMO_NOTE = ("**Demo (offline):** scikit-learn's 8×8 digits (1,437 training and 360 test images) and a small "
             "ResNet trained on them; a run with its Retrain reference takes a few seconds on a CPU.")


def sources_note(model: str, probe: bool = True) -> str:
    """The line under the model and dataset: what the demo is, or a preset's size and time on this hardware
    (and, where the Hub cannot be reached, that the presets cannot run here). ``probe=False``: the page is
    being built, and the Hub is asked when it loads."""
    from ..hub import hub_offline, hub_reachable
    from ..presets import PRESETS, estimate, find_preset
    from .form import DEMO

    online = not probe or (not hub_offline() and hub_reachable())
    offline = "" if online else ("The presets of real Hub models need the Hub, which cannot be reached from here: "
                                 "offline, only the demo and local folders run.")
    preset = find_preset(model)
    if preset is not None:
        warn = f'<div class="hfu-warning">{offline}</div>\n\n' if offline else ""
        return (f"{warn}**{preset.architecture} on {preset.dataset}** (`{preset.model}`): "
                f"{estimate(preset).text()}. {preset.note[:1].upper()}{preset.note[1:]}.")
    if (model or "").strip() in ("", DEMO):
        listed = ", ".join(dict.fromkeys(p.architecture for p in PRESETS))
        return f"{DEMO_NOTE} The model list also has presets of real Hub fine-tunes ({listed}). {offline}".strip()
    return "Give the dataset this model was trained on (a Hub id or a local folder)."


#: what the form says beside a method whose defaults do not forget the demo's digit, or forget it by breaking the
#: model: measured on the demo (digit 3, seed 0, against Retrain; ``python scripts/app_defaults.py``). RBM and
#: MinNorm-OG forget it at their defaults (its test accuracy 0.0 % and 2.7 %, Avg.Gap 0.15 and 1.06) and have none.
METHOD_NOTES: dict[str, str] = {
    "ft": "On the demo, FT does not forget: the forgotten digit's test accuracy is still 97 % after its default 5 "
          "epochs, and after 20. Fine-tuning on the kept data fits it without forgetting (the over-parameterised "
          "case RBM and MinNorm-OG are for); more epochs do not help.",
    "l1-sparse": "On the demo, ℓ1-sparse does not forget: the forgotten digit's test accuracy is still 97 % after "
                 "its default 5 epochs, and after 20; more epochs do not help.",
    "ga": "On the demo, GA does not forget at its defaults: the forgotten digit's test accuracy is still 97 % after "
          "5 epochs at lr 1e-4, and after 20; at lr 0.01 its loss diverges. Tune it (hf-unlearn tune) before use.",
    "rl": "On the demo, RL's defaults forget the digit but break the model: test accuracy on the other digits "
          "falls to 20 % (Avg.Gap 64). Lower its lr or epochs, or tune it.",
    "neggrad+": "On the demo, NegGrad+'s defaults forget the digit but break the model: test accuracy on the other "
                "digits falls to 11 % (Avg.Gap 44). Lower its lr or epochs, or tune it.",
    "salun": "On the demo, SalUn's defaults forget the digit but break the model: test accuracy on the other digits "
             "falls to 19 % (Avg.Gap 40). Lower its lr or epochs, or tune it.",
}


def method_advice(method: str) -> str:
    """A line beside the method when its defaults are known not to forget, or to forget by breaking the model
    (see :data:`METHOD_NOTES`)."""
    note = METHOD_NOTES.get(method)
    return f'<div class="hfu-note">{note}</div>' if note else ""


def run_status(report: Any, seconds: float | None = None) -> str:
    """What a finished run says above its table: the request, the verdict and where Retrain came from."""
    from ..verdict import reference_line, verdict

    text = f"Done: {report.method}, forget {report.forget.get('description')}."
    if seconds is not None:
        text += f" {seconds:.1f} s from the click to this result."
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


#: how a column's header says which way is better
ARROWS = {"higher": "↑", "lower": "↓", "retrain": "≈R"}


def column_header(metric: Any) -> str:
    """"UA ≈R", "RA ↑": the metric's label and which way is better."""
    return f"{metric.label} {ARROWS.get(metric.direction, '')}".strip()


def metric_headers() -> list[str]:
    """The empty table's headers before a run: every registered table metric (a run shows those it has)."""
    from ..metrics import table_metrics

    return ["model", *(column_header(m) for m in table_metrics()), "Avg.Gap ↓"]


def metrics_table(report: Any) -> dict[str, Any]:
    """The report's metrics table for the page: a column per registered metric (its header says which way is
    better), then Avg.Gap; each model's cell holds its value and, in brackets, its difference from Retrain."""
    from ..metrics.registry import fmt_pm, shown_columns

    cols = shown_columns(report.metrics.values())
    headers, rows = report.table_rows()
    spread = report.table_std() or [[None] * len(row) for row in rows]
    retrain = next((row for row in rows if row[0] == "retrain"), None)

    def cell(j: int, row: list[Any], sd: Any) -> str:
        text = fmt_pm(row[j], sd)
        goal = retrain[j] if retrain is not None and row is not retrain and j <= len(cols) else None
        return text if goal is None or row[j] is None else f"{text} ({float(row[j]) - float(goal):+.1f})"

    return {"headers": ["model", *(column_header(c) for c in cols), f"{headers[-1]} ↓"],
            "data": [[row[0], *(cell(j, row, sd_row[j]) for j in range(1, len(row)))]
                     for row, sd_row in zip(rows, spread, strict=True)]}


def metrics_note(report: Any) -> str:
    """Above the table: the one thing to look at first (Avg.Gap against the untouched model's), as a warning
    when the edit moved the model away from Retrain."""
    import html

    gaps = report.avg_gap or {}
    edited, untouched = gaps.get("unlearned"), gaps.get("original")
    if edited is None or untouched is None:
        return ("Cells: value in %. Without a Retrain reference there is nothing to measure the distance to: "
                "tick *also compute the Retrain reference*.")
    method = html.escape(str(report.method))
    head = (f"Cells: value in % and, in brackets, its difference from **Retrain** (the goal). **Avg.Gap "
            f"{edited:.2f}** for {method}, against **{untouched:.2f}** for the untouched model (lower is "
            "better).")
    if report.method != "none" and edited >= untouched:
        return (f'<div class="hfu-warning"><b>This edit made things worse:</b> {method}\'s Avg.Gap '
                f"({edited:.2f}) is no better than leaving the model alone ({untouched:.2f}). Try more epochs, "
                "another method, or Compare methods.</div>\n\n" + head)
    return head


def forget_gallery(result: Any, folder: Path, limit: int = 16) -> list[tuple[str, str]]:
    """Forget-set images with the prediction before → after, as PNG files in the run's ``folder``.

    Files, not images in memory: the session's history keeps what each run showed for as long as the page is open,
    and 16 decoded images a run (0.44 MB) made a page that keeps running grow by that much a run
    (``scripts/soak.py``). The files go with the run's folder.
    """
    from PIL import Image

    data = result.data
    names = data.class_names
    before = result.evaluations["original"].outputs["forget"].predictions
    after = result.evaluations["unlearned"].outputs["forget"].predictions
    out = folder / "forget_gallery"
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(min(limit, len(data.forget))):
        px = data.forget.pixels(i)
        if px.dtype.is_floating_point:
            px = (px - px.min()) / (px.max() - px.min() + 1e-8) * 255
        arr = px.to("cpu").byte().permute(1, 2, 0).numpy()
        path = out / f"{i:02d}.png"
        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).resize((96, 96), Image.NEAREST).save(path)
        truth = names[int(data.forget.labels[i])]
        items.append((str(path), f"true {truth}: {names[int(before[i])]} → {names[int(after[i])]}"))
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


#: how many of a session's results keep their model (for Push) and their files; older entries can still be viewed
KEEP_RESULTS = 5
#: how many of a session's results its history lists (the oldest drop off)
HISTORY_LIMIT = 50


def pushable(result: Any) -> Any:
    """What Push needs of a run (the model, its processor, report and mask), without the data, the untouched
    model and every seed's model, which the session would otherwise hold on to (on the GPU) for each run."""
    import dataclasses

    return dataclasses.replace(result, evaluations={}, data=None, original_model=None, seed_results=[])


def remember(state: dict[str, Any], label: str, view: str, shown: tuple[Any, ...], result: Any,
             folder: Path) -> str:
    """Add a finished run, comparison or audit (its files in ``folder``) to the session's history; returns its
    (unique) label.

    The last :data:`KEEP_RESULTS` keep what Push needs and their files; older ones keep what they showed in words
    and tables (their folders are gone, see ``session_files.session_folder``), and only the last
    :data:`HISTORY_LIMIT` are listed, so a page that stays open all day holds bounded memory.
    """
    history = state.setdefault("history", [])
    number = history[-1]["number"] + 1 if history else 1  # from the entries: they keep counting as old ones drop
    entry = f"#{number} {label}"
    history.append({"label": entry, "number": number, "view": view, "shown": shown, "folder": str(folder),
                    "result": None if result is None else pushable(result)})
    for old in history[:-KEEP_RESULTS]:
        old["result"] = None
    prune_history(state)
    del history[:-HISTORY_LIMIT]
    return entry


def prune_history(state: dict[str, Any]) -> None:
    """Strip each history entry whose folder the session no longer keeps of the files that folder held."""
    kept_folders = set(state.get("folders", []))
    for old in state.get("history", []):
        if old["folder"] is not None and old["folder"] not in kept_folders:
            old["shown"], old["folder"] = without_files(old["shown"], old["folder"]), None


def without_files(shown: tuple[Any, ...], folder: str) -> tuple[Any, ...]:
    """What a view showed, less every file under ``folder`` (removed): a plot becomes empty, a list of downloads
    or gallery images loses them. Gradio refuses to show a file that does not exist, so opening the entry again
    would otherwise fail."""
    import os

    def names_file(value: Any) -> bool:
        value = value[0] if isinstance(value, tuple) and value else value
        return isinstance(value, str) and value.startswith(folder.rstrip(os.sep) + os.sep)

    return tuple(None if names_file(v) else [x for x in v if not names_file(x)] if isinstance(v, list) else v
                 for v in shown)


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
