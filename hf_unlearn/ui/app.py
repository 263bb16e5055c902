"""The Gradio app: choose a model, a dataset and what to forget; watch it unlearn; compare; audit; push.

``app.py`` at the repository root only builds and launches :func:`build_app`.
The form is generated (:mod:`.form`) and handed to the run as one mapping of
names to values. Each run happens in a worker thread of the user's own session
(its result lives in ``gr.State``), streams its log and progress, and can be
cancelled: the engine checks the session's cancel event every step and
nothing is written before the end. Jobs wait in one bounded queue and run one at a time (by default), so one GPU
is never oversubscribed. Every handler turns failures into a one-line message
in the page.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ..errors import UnlearnError
from ..limits import on_space
from ..output import write_files
from .downloads import run_downloads
from .form import (
    DEMO,
    RANDOM_KIND,
    SHORTCUTS,
    class_pickers,
    controls,
    data_source,
    is_number,
    keywords_from_form,
    kind_controls,
    preset_details,
    shortcut_defaults,
    table_rows,
    with_settings,
)
from .form import pickers as kind_pickers
from .housekeeping import start_housekeeping
from .jobs import JOBS, Tracker, cancel_session, follow, run_plan, session_in_use, session_job, start_job
from .session_files import drop_session_files, session_folder
from .sessions import free_session
from .tuned import apply_tuned, offer, tuned_for_comparison
from .views import (
    CANCELLED,
    KEEP_RESULTS,
    audit_headers,
    audit_status,
    audit_table,
    comparison_headers,
    comparison_table,
    comparison_verdicts,
    error_html,
    forget_gallery,
    history_choices,
    method_advice,
    metric_headers,
    metrics_note,
    metrics_table,
    prune_history,
    remember,
    run_status,
    settings_rows,
    sources_note,
)

RUN_CONCURRENCY = "unlearning-job"
NOTHING_TO_CANCEL = "Nothing is running: there is nothing to cancel."
RESULT_GONE = ("That result is no longer kept: the app frees a page's results when it goes unused for a while "
               "(HF_UNLEARN_SESSION_IDLE_S) or many other pages come (HF_UNLEARN_SESSIONS_MAX); run it again.")
#: the Audit view's choices of N (models of each kind): an audit costs 2N runs
AUDIT_MODELS = (8, 16, 32, 64)
#: the Compare view's first choice: the two seed methods and the strongest baseline
COMPARE_DEFAULT = ("rbm", "minnorm-og", "salun")


def inspect_dataset(values: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Class names and detected columns/splits, for the user to confirm before running."""
    from ..data import labelled_splits
    from ..hub import load_dataset_dict

    src = data_source(values)
    dsd, _ = load_dataset_dict(src)
    s = labelled_splits(dsd, src)
    info = {"splits": {k: len(v) for k, v in dsd.items()}, "train_split": src.train_split,
            "test_split": s.test_split, "image_column": s.image_column, "label_column": s.label_column,
            "classes": len(s.class_names),
            "columns": [c for c in s.train_ds.column_names if c != s.image_column]}
    return s.class_names, info


#: the page's own styles: the progress display, and outcomes (error, warning, cancelled) that stand out
APP_CSS = """
.hfu-progress {border: 1px solid #d1d5db; border-radius: 8px; padding: 10px 14px; background: #f9fafb;}
.hfu-phase {font-size: 1.05em;}
.hfu-bar {height: 12px; background: #e5e7eb; border-radius: 6px; overflow: hidden; margin: 8px 0 6px;}
.hfu-bar span {display: block; height: 100%; background: #f97316; transition: width 0.3s;}
.hfu-foot {color: #4b5563; font-size: 0.9em;}
.hfu-error {border: 2px solid #dc2626; background: #fef2f2; color: #7f1d1d; padding: 10px 14px;
            border-radius: 8px; font-size: 1.05em;}
.hfu-warning {border: 2px solid #d97706; background: #fffbeb; color: #78350f; padding: 8px 12px;
              border-radius: 8px;}
.hfu-cancelled {border: 2px solid #6b7280; background: #f3f4f6; color: #111827; padding: 10px 14px;
                border-radius: 8px; font-size: 1.05em;}
.hfu-note {border-left: 4px solid #2563eb; background: #eff6ff; padding: 6px 12px; border-radius: 4px;}
"""


def gradio_hints(fn: Any, gr: Any) -> Any:
    """Make ``fn``'s ``gr.Request`` / ``gr.OAuthToken`` annotations the classes themselves.

    Gradio fills such parameters by their annotation, but this module's annotations are strings (``from
    __future__ import annotations``) that name a ``gr`` it imports only inside :func:`build_app`: unresolved,
    Gradio would pass None (no session for Cancel, no login token for Push on a Space).
    """
    import typing

    fn.__annotations__.update(typing.get_type_hints(fn, localns={"gr": gr}))
    return fn


def build_app() -> Any:
    """The app's Blocks (built, not launched)."""
    import gradio as gr

    from ..audit import DEFAULT_MODELS
    from ..forget import available_kinds
    from ..methods import NONE, available_methods
    from ..presets import find_preset
    from ..report import metrics_legend

    kinds = available_kinds()
    # Gradio's copies of the files a page shows (plots, downloads) go after HF_UNLEARN_FILES_MAX_AGE_S (an hour,
    # queued() starts the housekeeping); the session's own folders go with its state (its tab closed, it stayed
    # idle, or more sessions came: sessions.py)
    with gr.Blocks(title="hf-unlearn") as app:
        session = gr.State({}, delete_callback=drop_session_files)
        gr.Markdown("# hf-unlearn\nMake an image classifier **forget** a class or a subset of its training data, "
                    "see how well it forgot and what it kept (against retraining), and push the result to the Hub.")
        form: dict[str, Any] = {}  # form name → component: the one mapping the Run button hands over
        with gr.Row():
            form.update(controls("sources"))
        preset_info = gr.Markdown(sources_note(DEMO, probe=False), elem_id="preset-info")
        with gr.Accordion("Model and dataset details", open=False):
            with gr.Row():
                details = controls("details")
            with gr.Row():
                inspect_btn = gr.Button("Inspect dataset", scale=0, min_width=160)
                inspect_msg = gr.Markdown(elem_id="inspect-msg")
            ds_info = gr.JSON(label="Detected")
        form.update(details)
        form["forget_kind"] = gr.Radio(kinds, value=kinds[0], label="Forget", elem_id="forget-kind")
        by_kind = kind_controls()
        kind_rows = [inputs.pop("__row__") for inputs in by_kind.values()]
        for inputs in by_kind.values():
            form.update(inputs)
        # only a random draw has a seed of its own
        with gr.Row(visible=kinds[0] == RANDOM_KIND, elem_id="forget-seed-row") as seed_row:
            form.update(controls("forget"))
        with gr.Row():
            form.update(controls("run", only=("method",)))
            first = shortcut_defaults(form["method"].value)
            for name, label in SHORTCUTS.items():
                form[name] = gr.Number(value=first.get(name, 0), precision=0, label=label, elem_id=f"short-{name}",
                                       interactive=name in first)
            form.update(controls("run", skip=("method",)))
            form["with_retrain"] = gr.Checkbox(value=True, label="also compute the Retrain reference",
                                               elem_id="with-retrain")
            form["use_tuned"] = gr.Checkbox(value=True, label="use tuned settings where there are any (your "
                                            "edits win)", elem_id="use-tuned")
        method_note = gr.Markdown(method_advice(form["method"].value), elem_id="method-note")
        tuned_info = gr.Markdown(elem_id="tuned-info")
        with gr.Accordion("Method settings (from the method's documentation; edit values) and tuned settings",
                          open=False, elem_id="settings-panel"):
            form["settings"] = gr.Dataframe(settings_rows(form["method"].value), interactive=True, wrap=True,
                                            headers=["setting", "value", "meaning"], elem_id="settings")
            form["tuned_file"] = gr.File(label="upload a settings file (hf-unlearn tune)", type="filepath",
                                         file_types=[".json"], elem_id="tuned-file", height=120)
        with gr.Tabs(elem_id="views") as views:
            with gr.Tab("Unlearn", id="unlearn"):
                with gr.Row():
                    run_btn = gr.Button("Unlearn", variant="primary", elem_id="run", scale=4)
                    cancel_btn = gr.Button("Cancel", variant="secondary", size="md", elem_id="cancel", scale=1)
                progress = gr.HTML(elem_id="progress")
                status = gr.Markdown(elem_id="status")
                with gr.Accordion("Log", open=False):  # the progress display above says where the job stands
                    log = gr.Textbox(show_label=False, lines=4, max_lines=40, autoscroll=True, elem_id="log")
                note = gr.Markdown(elem_id="metrics-note")
                table = gr.Dataframe(headers=metric_headers(), label="Metrics (%): value (difference from Retrain)",
                                     elem_id="metrics", interactive=False, wrap=True)
                with gr.Accordion("What the columns mean", open=False, elem_id="glossary"):
                    gr.Markdown(metrics_legend())
                metrics_json = gr.JSON(label="Metrics (JSON)", visible=False)
                with gr.Row(equal_height=True):
                    per_class = gr.Image(type="filepath", elem_id="per-class", show_label=False, height=340)
                    mia = gr.Image(type="filepath", elem_id="mia", show_label=False, height=340)
                gallery = gr.Gallery(label="Forget-set images: prediction before → after", columns=8,
                                     height="auto", elem_id="gallery")
                downloads = gr.File(label="Downloads: the unlearned checkpoint (zip), the report (Markdown, JSON) "
                                    "and its plots", file_count="multiple", elem_id="downloads")
            with gr.Tab("Compare methods", id="compare"):
                gr.Markdown("Runs every chosen method on the request above, each seed against the same Retrain "
                            "reference (trained once per seed, or read from the cache); **none**, the untouched "
                            "model, always runs too, as the baseline an edit must beat. Seeds: the **seeds** box "
                            "above (empty: the seed alone). Each method uses its own settings; epochs or batch "
                            "size changed above apply to every method.")
                with gr.Row():
                    compare_methods = gr.CheckboxGroup([m for m in available_methods() if m != NONE],
                                                       value=list(COMPARE_DEFAULT),
                                                       label="Methods to compare", elem_id="compare-methods",
                                                       scale=4)
                    compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-run", scale=1)
                    compare_cancel = gr.Button("Cancel", variant="secondary", elem_id="compare-cancel", scale=0,
                                               min_width=100)
                compare_progress = gr.HTML(elem_id="compare-progress")
                compare_status = gr.Markdown(elem_id="compare-status")
                compare_log = gr.Textbox(label="Log", lines=4, max_lines=8, autoscroll=True)
                compare_table = gr.Dataframe(headers=comparison_headers(), label="Comparison (mean ± std over "
                                             "the seeds; metrics in %)", elem_id="compare-table",
                                             interactive=False, wrap=True)
                with gr.Row():
                    pareto = gr.Image(label="Avg.Gap against unlearning time (lower left is better)",
                                      type="filepath", elem_id="pareto", scale=3)
                    verdicts = gr.Markdown(elem_id="compare-verdicts")
                compare_files = gr.File(label="comparison.json, comparison.md, pareto.png", file_count="multiple")
            with gr.Tab("Audit forgetting", id="audit"):
                gr.Markdown("The NeurIPS 2023 unlearning competition's **forgetting-quality audit** of the method "
                            "chosen above (with its settings): it runs the method N times and Retrain N times "
                            "(seeds 0..N−1; cached references are reused) and asks, for every forget example, "
                            "whether an attacker can tell the unlearned models from the retrained ones by its "
                            "confidence. The score F is shown next to its ceiling at this N, what a perfect "
                            "unlearner would score. Push then sends seed 0's model with the scores in its card.")
                with gr.Row():
                    audit_n = gr.Dropdown(list(AUDIT_MODELS), value=DEFAULT_MODELS,
                                          label="N: models of each kind (2N runs)",
                                          elem_id="audit-n", scale=2)
                    audit_btn = gr.Button("Audit", variant="primary", elem_id="audit-run", scale=1)
                    audit_cancel = gr.Button("Cancel", variant="secondary", elem_id="audit-cancel", scale=0,
                                             min_width=100)
                audit_progress = gr.HTML(elem_id="audit-progress")
                audit_status_md = gr.Markdown(elem_id="audit-status")
                audit_log = gr.Textbox(label="Log", lines=4, max_lines=8, autoscroll=True)
                audit_plot = gr.Image(label="Per-example ε and the most exposed forget examples", type="filepath",
                                      elem_id="audit-hist")
                audit_scores = gr.Dataframe(headers=audit_headers(), label="Audit scores", elem_id="audit-scores",
                                            interactive=False, wrap=True, column_widths=["20%", "10%", "70%"])
                audit_files = gr.File(label="audit.json, audit.md, audit_confidences.npz, epsilon_hist.png",
                                      file_count="multiple")
        with gr.Row():  # below the views, so that Unlearn is in the first screen of the page
            # a label the session no longer lists (the app freed it) reaches on_open, which says so
            history = gr.Dropdown([], value=None, label="This session's runs (pick one to open it again)",
                                  elem_id="history", interactive=True, scale=4, allow_custom_value=True)
        with gr.Accordion("Push to the Hub", open=True):
            with gr.Row():
                if on_space():
                    gr.LoginButton()
                    token = gr.Textbox(value="", visible=False)
                else:
                    token = gr.Textbox(value="", label="Hub token (write)", type="password",
                                       placeholder="empty: HF_TOKEN or the saved login")
                repo = gr.Textbox(value="", label="Repo (namespace/name)", elem_id="push-repo")
                private = gr.Checkbox(label="private")
                create_pr = gr.Checkbox(label="open a pull request")
                push_btn = gr.Button("Push", elem_id="push")
            push_out = gr.Markdown(elem_id="push-result")

        # -------------------------------------------------------------- handlers

        def on_kind(kind: str, retain_fraction: Any) -> list[Any]:
            """Only the chosen kind's inputs; the forget seed where something is drawn with it (a random forget
            set, or a retain subsample)."""
            subsampled = is_number(retain_fraction) and float(retain_fraction) < 1
            return [*(gr.update(visible=name == kind) for name in by_kind),
                    gr.update(visible=kind == RANDOM_KIND or subsampled)]

        pickers = [form[name] for name in class_pickers()]
        columns = [form[name] for name in kind_pickers("columns")]
        detail_names = list(details)
        initial_details = {n: details[n].value for n in detail_names}

        def on_model(model: str, dataset: str) -> tuple[Any, ...]:
            """A preset fills the dataset and its details; another model never keeps the demo's dataset."""
            preset = find_preset(model)
            if preset is not None:
                filled = preset_details(preset)
                return (preset.dataset, *(gr.update(value=filled.get(n, "")) if n in filled else gr.update()
                                          for n in detail_names), sources_note(model))
            if (model or "").strip() in ("", DEMO):  # back to the demo: no preset's config, columns or base
                return (DEMO, *(gr.update(value=initial_details[n]) for n in detail_names), sources_note(DEMO))
            keep = gr.update(value="") if dataset == DEMO else gr.update()
            return (keep, *(gr.update() for _ in detail_names), sources_note(model))

        def on_method(method: str) -> tuple[Any, ...]:
            shortcuts = shortcut_defaults(method)
            return (settings_rows(method), *(gr.update(value=shortcuts.get(n, 0), interactive=n in shortcuts)
                                             for n in SHORTCUTS), method_advice(method))

        def on_shortcut(rows: Any, *boxes: Any) -> Any:
            """Editing a box beside the method edits its row of the settings table: one value, shown twice."""
            return with_settings(rows, dict(zip(SHORTCUTS, boxes, strict=True)))

        def on_settings(rows: Any) -> tuple[Any, ...]:
            values = dict(table_rows(rows))
            return tuple(gr.update(value=int(float(values[n]))) if is_number(values.get(n)) else gr.update()
                         for n in SHORTCUTS)

        def on_inspect(*picked: Any, **values: Any) -> tuple[Any, ...]:
            try:
                names, info = inspect_dataset(values)
            except UnlearnError as exc:
                return (*(gr.update() for _ in (*pickers, *columns)), None, error_html(str(exc)))
            kept = [[v for v in (current or []) if v in names] or names[:1] for current in picked]
            listed = [gr.update(choices=info["columns"]) for _ in columns]
            return (*(gr.update(choices=names, value=k) for k in kept), *listed, info,
                    f"Dataset has {len(names)} classes and the columns {', '.join(info['columns'])}; the "
                    f"classes to forget stay {', '.join(kept[0]) if kept else '–'}.")

        def on_run(state: dict, request: gr.Request, **values: Any):
            from ..api import run
            from ..config import RunConfig

            with session_in_use(request.session_hash):  # its state is not freed under it
                clicked = time.perf_counter()
                state = dict(state or {})
                state.pop("result", None)
                blank = (None, None, None, None, None, [], "", "")  # table, JSON, plots, files, images, note, progress
                keep = gr.update()
                tracker = Tracker(phase="checking the request")  # on a fresh server this also builds the demo's model
                yield (state, "", "", *blank[:-1], tracker.html(), keep)
                try:
                    keywords, tuned = apply_tuned(values, keywords_from_form(values))
                    config = dataclasses.replace(RunConfig.from_keywords(**keywords), tuned=tuned)
                except UnlearnError as exc:
                    yield (state, error_html(str(exc)), "", *blank, keep)
                    return
                try:
                    job = start_job(request.session_hash, lambda **kw: run(config, **kw))
                except UnlearnError as exc:  # the queue is full, or this page has a job already
                    yield (state, error_html(str(exc)), "", *blank, keep)
                    return
                state["job"] = job
                lines: list[str] = []
                tracker.set_plan(run_plan(config))
                yield (state, "", "", *blank[:-1], tracker.html(), keep)
                for shown_progress, text in follow(job, lines, tracker):
                    yield (state, keep, text, *(keep,) * 7, shown_progress, keep)
                state.pop("job", None)  # it ended: the state keeps what the page shows, not all it computed
                if job.cancelled:
                    lines.append("cancelled")
                    yield (state, CANCELLED, "\n".join(lines), *blank, keep)
                    return
                if job.error:
                    yield (state, error_html(job.error), "\n".join(lines), *blank, keep)
                    return
                result = job.result
                report = result.report
                out = session_folder(state, "hf-unlearn-ui-")  # the runs the history can still show keep theirs
                try:
                    checkpoint, files = run_downloads(result, out)
                    plots = [str(checkpoint / n) if (checkpoint / n).exists() else None
                             for n in ("per_class.png", "mia.png")]
                    gallery = forget_gallery(result, out)
                    failed = ""
                except (UnlearnError, OSError) as exc:  # the results stand; only the files are missing
                    plots, files, gallery = [None, None], [], []
                    failed = error_html(f"the downloads could not be written ({exc}); the results above are complete")
                seconds = time.perf_counter() - clicked
                lines.append(f"done: unlearning took {report.rte_s:.1f} s; {seconds:.1f} s from the click to this "
                             "result")
                shown = (run_status(report, seconds), "\n".join(lines[-200:]), metrics_table(report),
                         report.to_dict()["metrics"], *plots, files, gallery,
                         failed + metrics_note(report), "")
                entry = remember(state, f"{report.method}, forget {report.forget.get('description')}, "
                                 f"{report.seeds_text()}" + (f": Avg.Gap {report.avg_gap['unlearned']:.2f}"
                                                            if report.avg_gap else ""), "unlearn", shown, result, out)
                state["result"] = state["history"][-1]["result"]
                yield (state, *shown, gr.update(choices=history_choices(state), value=entry))

        def on_compare(state: dict, methods: list[str], request: gr.Request, **values: Any):
            from ..compare import run_comparison
            from ..config import RunConfig

            with session_in_use(request.session_hash):  # its state is not freed under it
                state = dict(state or {})
                blank = (None, None, "", None)  # table, plot, verdicts, files
                keep = gr.update()
                try:
                    keywords = keywords_from_form(values, per_method=False)
                    if not methods:
                        raise UnlearnError("choose at least one method to compare")
                    config = RunConfig.from_keywords(**{**keywords, "method": methods[0], "reference": "retrain"})
                    shared = {k: v for k, v in keywords.items() if k in SHORTCUTS}  # they win over tuned values
                    under = tuned_for_comparison(values, methods)
                except UnlearnError as exc:
                    yield (state, "", error_html(str(exc)), "", *blank, keep)
                    return
                try:
                    job = start_job(request.session_hash,
                                    lambda **kw: run_comparison(config, methods, shared, under=under, **kw))
                except UnlearnError as exc:
                    yield (state, "", error_html(str(exc)), "", *blank, keep)
                    return
                state["job"] = job
                lines: list[str] = []
                tracker = Tracker()
                yield (state, tracker.html(), "", "", *blank, keep)
                for shown_progress, text in follow(job, lines, tracker):
                    yield (state, shown_progress, keep, text, *(keep,) * 4, keep)
                state.pop("job", None)  # it ended: the state keeps what the page shows, not all it computed
                if job.cancelled or job.error:
                    lines.append("cancelled" if job.cancelled else "failed")
                    yield (state, "", CANCELLED if job.cancelled else error_html(job.error), "\n".join(lines),
                           *blank, keep)
                    return
                comparison = job.result
                folder = session_folder(state, "hf-unlearn-compare-")
                out = folder / "comparison"
                comparison.save(out)
                lines.append(f"done: {len(methods)} methods × {len(comparison.seeds)} seeds in "
                             f"{comparison.seconds:.1f} s")
                shown = ("", f"Done: {', '.join(methods)}; forget {comparison.first.forget.get('description')}; seeds "
                         f"{', '.join(map(str, comparison.seeds))}; {comparison.seconds:.1f} s.",
                         "\n".join(lines[-200:]), comparison_table(comparison), str(out / "pareto.png"),
                         comparison_verdicts(comparison),
                         [str(out / name) for name in ("comparison.json", "comparison.md", "pareto.png")])
                entry = remember(state, f"compare {', '.join(methods)}, forget "
                                 f"{comparison.first.forget.get('description')}, seeds "
                                 f"{', '.join(map(str, comparison.seeds))}", "compare", shown, None, folder)
                yield (state, *shown, gr.update(choices=history_choices(state), value=entry))

        def on_audit(state: dict, n_models: Any, request: gr.Request, **values: Any):
            from ..audit import run_audit
            from ..config import RunConfig

            with session_in_use(request.session_hash):  # its state is not freed under it
                state = dict(state or {})
                state.pop("result", None)  # Push sends this audit's checkpoint or nothing, never an earlier run's
                blank = (None, None, None)  # figure, scores, files
                keep = gr.update()
                try:
                    keywords, tuned = apply_tuned(values, keywords_from_form(values))
                    config = dataclasses.replace(
                        RunConfig.from_keywords(**{**keywords, "reference": "retrain", "seeds": None}), tuned=tuned)
                    n = int(n_models)
                    if n not in AUDIT_MODELS:
                        raise UnlearnError(f"choose N among {', '.join(map(str, AUDIT_MODELS))}")
                except (UnlearnError, TypeError, ValueError) as exc:
                    yield (state, "", error_html(str(exc)), "", *blank, keep)
                    return
                try:
                    job = start_job(request.session_hash, lambda **kw: run_audit(config, n, **kw))
                except UnlearnError as exc:
                    yield (state, "", error_html(str(exc)), "", *blank, keep)
                    return
                state["job"] = job
                lines: list[str] = []
                tracker = Tracker()
                working = (f"Auditing {config.method}: {2 * n} runs ({n} unlearned, {n} retrained or read from the "
                           "cache).")
                yield (state, tracker.html(), working, "", *blank, keep)
                for shown_progress, text in follow(job, lines, tracker, every_step=False):
                    yield (state, shown_progress, keep, text, *blank, keep)
                state.pop("job", None)  # it ended: the state keeps what the page shows, not all it computed
                if job.cancelled or job.error:
                    yield (state, "", CANCELLED if job.cancelled else error_html(job.error), "\n".join(lines),
                           *blank, keep)
                    return
                audit = job.result
                out = session_folder(state, "hf-unlearn-audit-")
                files = audit.files()
                write_files(out, files)
                lines.append(f"done: {2 * n} runs in {audit.seconds:.1f} s")
                shown = ("", audit_status(audit), "\n".join(lines[-200:]), str(out / "epsilon_hist.png"),
                         audit_table(audit), [str(out / name) for name in files])
                entry = remember(state, f"audit {config.method}, forget {audit.report.forget.get('description')}, N = "
                                 f"{n}: F {audit.metrics['forget_quality']:.4f}", "audit", shown, audit.first, out)
                state["result"] = state["history"][-1]["result"]  # Push sends the audited checkpoint
                yield (state, *shown, gr.update(choices=history_choices(state), value=entry))

        def on_open(state: dict, choice: str | None):
            """Show an earlier run or comparison of this session again (and make a run the one Push sends)."""
            state = dict(state or {})
            prune_history(state)  # a failed job may have removed a folder without adding an entry
            entry = next((e for e in state.get("history", []) if e["label"] == choice), None)
            views_outputs = {"unlearn": run_outputs, "compare": compare_outputs, "audit": audit_outputs}
            if entry is None:  # the session was freed meanwhile (idle, or more sessions came): its results went
                gr.Info(RESULT_GONE)
                return (state, gr.update(), *(gr.update() for outs in views_outputs.values() for _ in outs))
            shown = [list(entry["shown"]) if entry["view"] == view else [gr.update()] * len(outs)
                     for view, outs in views_outputs.items()]
            if entry["view"] in ("unlearn", "audit"):  # Push sends the run on screen, or nothing
                state["result"] = entry.get("result")
            if entry.get("folder") is None:  # older than the last KEEP_RESULTS: its files and model are gone
                own = shown[list(views_outputs).index(entry["view"])]
                at = 0 if entry["view"] == "unlearn" else 1  # the view's status
                own[at] = (f"{own[at]}\n\nOnly the last {KEEP_RESULTS} results keep their model, plots and "
                           "downloads: run this one again to get them back (and to push it).")
            return (state, gr.Tabs(selected=entry["view"]), *(v for part in shown for v in part))

        def on_cancel(state: dict, request: gr.Request) -> Any:
            job = session_job(getattr(request, "session_hash", None), state)
            if job is None or not job.running:  # a toast: the view keeps the result it shows
                gr.Info(NOTHING_TO_CANCEL)
                return gr.update()
            job.cancel.set()  # the job's own progress display says so; the status is the job's to write, so a
            return gr.update()  # late reply here can never cover the job's final "Cancelled" box

        def on_unload(request: gr.Request) -> None:
            """The tab is gone: stop its job and free its session (the job's handler may still write it back until
            the job stops; the session sweep frees it again then)."""
            session_id = getattr(request, "session_hash", None)
            cancel_session(session_id)
            free_session(app, session_id, closed=True)

        def on_push(state, hub_token, repo_id, private_repo, open_pr, oauth_token: gr.OAuthToken | None = None):
            from ..push import push_to_hub

            result = (state or {}).get("result")
            if result is None:
                return error_html("there is no result on this page to push: run an unlearning job (or open one of "
                                  "the last results) first")
            if not repo_id:
                return error_html("give the target repo as namespace/name")
            token_value = oauth_token.token if oauth_token is not None else (hub_token or None)
            try:
                info = push_to_hub(result, repo_id.strip(), token=token_value, private=bool(private_repo) or None,
                                   create_pr=bool(open_pr))
            except UnlearnError as exc:
                return error_html(str(exc))
            url = info.pr_url or info.commit_url
            return f"Pushed: [{url}]({url})"

        for handler in (on_run, on_compare, on_audit, on_cancel, on_push, on_unload):
            gradio_hints(handler, gr)
        for name in ("forget_kind", "retain_fraction"):
            form[name].change(on_kind, [form["forget_kind"], form["retain_fraction"]], [*kind_rows, seed_row])
        form["model"].change(on_model, [form["model"], form["dataset"]],
                             [form["dataset"], *(form[n] for n in detail_names), preset_info])
        shortcut_boxes = [form[n] for n in SHORTCUTS]
        form["method"].change(on_method, form["method"], [form["settings"], *shortcut_boxes, method_note])
        for box in shortcut_boxes:
            box.input(on_shortcut, [form["settings"], *shortcut_boxes], form["settings"])
        form["settings"].input(on_settings, form["settings"], shortcut_boxes)
        offer_inputs = {k: form[k] for k in ("model", "dataset", *details, "method", "forget_kind", "tuned_file")}
        for name in ("model", "dataset", "method", "forget_kind", "tuned_file"):
            form[name].change(lambda **values: offer(values), inputs_kwargs=offer_inputs, outputs=tuned_info)
        app.load(lambda **values: offer(values), inputs_kwargs=offer_inputs, outputs=tuned_info)
        app.load(lambda: sources_note(DEMO), outputs=preset_info)
        inspect_btn.click(on_inspect, inputs=pickers,
                          inputs_kwargs={k: form[k] for k in ("model", "dataset", *details)},
                          outputs=[*pickers, *columns, ds_info, inspect_msg])
        run_outputs = [status, log, table, metrics_json, per_class, mia, downloads, gallery, note, progress]
        compare_outputs = [compare_progress, compare_status, compare_log, compare_table, pareto, verdicts,
                           compare_files]
        audit_outputs = [audit_progress, audit_status_md, audit_log, audit_plot, audit_scores, audit_files]
        # the page's own progress display replaces Gradio's, which would cover every output of the job; every job
        # event enters its handler at once and waits in the app's own queue (jobs.JOBS), which shows its place; the
        # margin lets the events beyond a full line reach the handler too, to be told that the app is busy
        job_events = JOBS.slots + JOBS.size + 16
        run_btn.click(on_run, inputs=[session], inputs_kwargs=form, outputs=[session, *run_outputs, history],
                      api_name="run", concurrency_limit=job_events, concurrency_id=RUN_CONCURRENCY,
                      show_progress="hidden")
        cancel_btn.click(on_cancel, session, status, api_name="cancel")
        compare_btn.click(on_compare, inputs=[session, compare_methods], inputs_kwargs=form,
                          outputs=[session, *compare_outputs, history], api_name="compare",
                          concurrency_limit=job_events, concurrency_id=RUN_CONCURRENCY, show_progress="hidden")
        compare_cancel.click(on_cancel, session, compare_status, api_name="cancel_compare")
        audit_btn.click(on_audit, inputs=[session, audit_n], inputs_kwargs=form,
                        outputs=[session, *audit_outputs, history], api_name="audit", concurrency_limit=job_events,
                        concurrency_id=RUN_CONCURRENCY, show_progress="hidden")
        audit_cancel.click(on_cancel, session, audit_status_md, api_name="cancel_audit")
        history.input(on_open, [session, history], [session, views, *run_outputs, *compare_outputs,
                                                    *audit_outputs], api_name="open")
        push_btn.click(on_push, [session, token, repo, private, create_pr], push_out, api_name="push")
        app.unload(on_unload)  # a closed tab stops its job, running or waiting
    return app


#: events Gradio holds before it answers "queue full" (light ones: a job waits in jobs.JOBS, not here)
EVENT_QUEUE_SIZE = 64


def queued(app: Any) -> Any:
    """The production queue: light events 4 at a time and at most :data:`EVENT_QUEUE_SIZE` waiting; jobs enter
    their handlers at once and wait in the app's own bounded queue (:class:`~hf_unlearn.ui.jobs.JobQueue`); the
    files it served and its stale sessions are swept (:mod:`~hf_unlearn.ui.housekeeping`)."""
    start_housekeeping(app)
    return app.queue(default_concurrency_limit=4, max_size=EVENT_QUEUE_SIZE)


#: the largest upload the app stores (an index list or a settings file is far smaller; Gradio refuses larger
#: files before they reach the disk)
MAX_UPLOAD = "16mb"


def warm_demo() -> None:
    """Build the offline demo's dataset and model (a few seconds, once per machine) in the background, so that
    the first click on a fresh server or Space does not wait for it."""
    import threading

    from ..demo import ensure_demo_assets

    def build() -> None:
        try:
            ensure_demo_assets()
        except Exception:  # noqa: BLE001 - the first run builds it again and reports what fails
            pass

    threading.Thread(target=build, name="hf-unlearn-demo-warmup", daemon=True).start()


def launch(**kwargs: Any) -> Any:
    """Build and launch with the production queue (the demo built meanwhile)."""
    warm_demo()
    kwargs.setdefault("max_file_size", MAX_UPLOAD)
    kwargs.setdefault("css", APP_CSS)
    return queued(build_app()).launch(**kwargs)


def serve_on_loopback() -> tuple[Any, str]:
    """Build and launch the app with the production queue on a free 127.0.0.1 port: (app, its URL).

    For scripts that drive it (screenshots, timings); ``app.close()`` stops it.
    """
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = queued(build_app())
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               max_file_size=MAX_UPLOAD, css=APP_CSS)
    return app, f"http://127.0.0.1:{port}/"
