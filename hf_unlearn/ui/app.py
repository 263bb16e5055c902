"""The Gradio app: choose a model, a dataset and what to forget; watch it unlearn; compare; audit; push.

``app.py`` at the repository root only builds and launches :func:`build_app`.
The form is generated (:mod:`.form`) and handed to the run as one mapping of
names to values. Each run happens in a worker thread of the user's own session
(its result lives in ``gr.State``), streams its log and progress, and can be
cancelled: the engine checks the session's cancel event every step and
nothing is written before the end. Runs share one concurrency slot so one GPU
is never oversubscribed. Every handler turns failures into a one-line message
in the page.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UnlearnError
from ..output import write_files
from .form import SHORTCUTS, class_pickers, controls, data_source, keywords_from_form, kind_controls
from .form import pickers as kind_pickers
from .jobs import Job, follow
from .tuned import apply_tuned, offer, tuned_for_comparison
from .views import (
    KEEP_RESULTS,
    audit_headers,
    audit_status,
    audit_table,
    comparison_headers,
    comparison_table,
    comparison_verdicts,
    forget_gallery,
    history_choices,
    metric_headers,
    metrics_table,
    mia_histogram,
    remember,
    run_status,
    settings_rows,
)

RUN_CONCURRENCY = "unlearning-job"
#: the Audit view's choices of N (models of each kind): an audit costs 2N runs
AUDIT_MODELS = (8, 16, 32, 64)
#: the Compare view's first choice: the two seed methods and the strongest baseline
COMPARE_DEFAULT = ("rbm", "minnorm-og", "salun")


def on_space() -> bool:
    return os.environ.get("SYSTEM") == "spaces" or bool(os.environ.get("SPACE_ID"))


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


def build_app() -> Any:
    """The app's Blocks (built, not launched)."""
    import gradio as gr

    from ..audit import DEFAULT_MODELS
    from ..forget import available_kinds
    from ..methods import NONE, available_methods

    with gr.Blocks(title="hf-unlearn") as app:
        session = gr.State({})
        gr.Markdown("# hf-unlearn\nMake an image classifier **forget** a class or a subset of its training data, "
                    "see how well it forgot and what it kept (against retraining), and push the result to the Hub.")
        form: dict[str, Any] = {}  # form name → component: the one mapping the Run button hands over
        with gr.Row():
            form.update(controls("sources"))
        with gr.Accordion("Model and dataset details", open=False):
            with gr.Row():
                details = controls("details")
            inspect_btn = gr.Button("Inspect dataset")
            ds_info = gr.JSON(label="Detected")
        form.update(details)
        with gr.Row():
            form["forget_kind"] = gr.Radio(available_kinds(), value=available_kinds()[0], label="Forget",
                                           elem_id="forget-kind")
            form.update(controls("forget"))
        by_kind = kind_controls()
        kind_rows = [inputs.pop("__row__") for inputs in by_kind.values()]
        for inputs in by_kind.values():
            form.update(inputs)
        with gr.Row():
            form.update(controls("run", only=("method",)))
            for name, (label, value) in SHORTCUTS.items():
                form[name] = gr.Number(value=value, precision=0, label=label)
            form.update(controls("run", skip=("method",)))
            form["with_retrain"] = gr.Checkbox(value=True, label="also compute the Retrain reference",
                                               elem_id="with-retrain")
        with gr.Accordion("Method settings (from the method's documentation; edit values)", open=False):
            form["settings"] = gr.Dataframe(settings_rows(form["method"].value), interactive=True, wrap=True,
                                            headers=["setting", "value", "meaning"])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                tuned_info = gr.Markdown(elem_id="tuned-info")
            with gr.Column(scale=1):
                form["use_tuned"] = gr.Checkbox(value=True, label="use the tuned settings (your edits above win)",
                                                elem_id="use-tuned")
                form["tuned_file"] = gr.File(label="or upload a settings file (hf-unlearn tune)", type="filepath",
                                             file_types=[".json"], elem_id="tuned-file", height=150)
        with gr.Row():
            history = gr.Dropdown([], value=None, label="This session's runs (pick one to open it again)",
                                  elem_id="history", interactive=True, scale=4)
        with gr.Tabs(elem_id="views") as views:
            with gr.Tab("Unlearn", id="unlearn"):
                with gr.Row():
                    run_btn = gr.Button("Unlearn", variant="primary", elem_id="run")
                    cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel")
                status = gr.Markdown(elem_id="status")
                log = gr.Textbox(label="Log", lines=6, max_lines=12, autoscroll=True)
                table = gr.Dataframe(headers=metric_headers(), label="Metrics (%)", elem_id="metrics",
                                     interactive=False)
                metrics_json = gr.JSON(label="Metrics (JSON)", visible=False)
                with gr.Row():
                    per_class = gr.Image(label="Per-class test accuracy", type="filepath", elem_id="per-class")
                    mia = gr.Image(label="MIA confidence histograms", type="filepath")
                gallery = gr.Gallery(label="Forget-set images: prediction before → after", columns=8,
                                     height="auto")
                report_file = gr.File(label="Report (JSON)")
            with gr.Tab("Compare methods", id="compare"):
                gr.Markdown("Runs every chosen method on the request above, each seed against the same Retrain "
                            "reference (trained once per seed, or read from the cache); **none**, the untouched "
                            "model, always runs too, as the baseline an edit must beat. Seeds: the **seeds** box "
                            "above (empty: the seed alone); epochs and batch size apply to every method.")
                with gr.Row():
                    compare_methods = gr.CheckboxGroup([m for m in available_methods() if m != NONE],
                                                       value=list(COMPARE_DEFAULT),
                                                       label="Methods to compare", elem_id="compare-methods",
                                                       scale=4)
                    compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-run", scale=1)
                    compare_cancel = gr.Button("Cancel", variant="stop", elem_id="compare-cancel", scale=1)
                compare_status = gr.Markdown(elem_id="compare-status")
                compare_log = gr.Textbox(label="Log", lines=4, max_lines=10, autoscroll=True)
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
                    audit_cancel = gr.Button("Cancel", variant="stop", elem_id="audit-cancel", scale=1)
                audit_status_md = gr.Markdown(elem_id="audit-status")
                audit_log = gr.Textbox(label="Log", lines=4, max_lines=10, autoscroll=True)
                audit_plot = gr.Image(label="Per-example ε and the most exposed forget examples", type="filepath",
                                      elem_id="audit-hist")
                audit_scores = gr.Dataframe(headers=audit_headers(), label="Audit scores", elem_id="audit-scores",
                                            interactive=False, wrap=True, column_widths=["20%", "10%", "70%"])
                audit_files = gr.File(label="audit.json, audit.md, audit_confidences.npz, epsilon_hist.png",
                                      file_count="multiple")
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

        def on_kind(kind: str) -> list[Any]:
            return [gr.update(visible=name == kind) for name in by_kind]

        pickers = [form[name] for name in class_pickers()]
        columns = [form[name] for name in kind_pickers("columns")]

        def on_inspect(**values: Any) -> tuple[Any, ...]:
            try:
                names, info = inspect_dataset(values)
            except UnlearnError as exc:
                return (*(gr.update() for _ in (*pickers, *columns)), None, f"**Error:** {exc}")
            picked = [gr.update(choices=names, value=names[:1]) for _ in pickers]
            listed = [gr.update(choices=info["columns"]) for _ in columns]
            return (*picked, *listed, info, f"Dataset has {len(names)} classes and the columns "
                    f"{', '.join(info['columns'])}.")

        def on_run(state: dict, progress: Any = gr.Progress(), **values: Any):
            from ..api import run
            from ..config import RunConfig

            state = dict(state or {})
            state.pop("result", None)
            empty = (None, None, None, None, None)  # table, metrics JSON, two plots, report file
            keep = gr.update()
            try:
                keywords, tuned = apply_tuned(values, keywords_from_form(values))
                config = dataclasses.replace(RunConfig.from_keywords(**keywords), tuned=tuned)
            except UnlearnError as exc:
                yield (state, f"**Error:** {exc}", "", *empty, [], keep)
                return
            job = Job(lambda **kw: run(config, **kw)).start()
            state["job"] = job
            lines: list[str] = []
            yield (state, "Running…", "", *empty, [], keep)
            for text in follow(job, progress, lines):
                yield (state, "Running…", text, *empty, [], keep)
            if job.error:
                yield (state, f"**Error:** {job.error}", "\n".join(lines), *empty, [], keep)
                return
            result = job.result
            out = Path(tempfile.mkdtemp(prefix="hf-unlearn-ui-"))
            report = result.report
            (out / "unlearning_report.json").write_text(report.to_json())
            lines.append(f"done: unlearning took {report.rte_s:.1f} s")
            shown = (run_status(report),
                     "\n".join(lines), metrics_table(report), report.to_dict()["metrics"],
                     str(report.plot_per_class(out / "per_class.png")), str(mia_histogram(result, out / "mia.png")),
                     str(out / "unlearning_report.json"), forget_gallery(result))
            entry = remember(state, f"{report.method}, forget {report.forget.get('description')}, "
                             f"{report.seeds_text()}" + (f": Avg.Gap {report.avg_gap['unlearned']:.2f}"
                                                        if report.avg_gap else ""), "unlearn", shown, result)
            state["result"] = state["history"][-1]["result"]
            yield (state, *shown, gr.update(choices=history_choices(state), value=entry))

        def on_compare(state: dict, methods: list[str], progress: Any = gr.Progress(), **values: Any):
            from ..compare import run_comparison
            from ..config import RunConfig

            state = dict(state or {})
            empty = (None, None, "", None)  # table, plot, verdicts, files
            keep = gr.update()
            try:
                keywords = keywords_from_form(values, per_method=False)
                if not methods:
                    raise UnlearnError("choose at least one method to compare")
                config = RunConfig.from_keywords(**{**keywords, "method": methods[0], "reference": "retrain"})
                shared = {k: v for k, v in keywords.items() if k in SHORTCUTS}  # they win over tuned values
                under = tuned_for_comparison(values, methods)
            except UnlearnError as exc:
                yield (state, f"**Error:** {exc}", "", *empty, keep)
                return
            job = Job(lambda **kw: run_comparison(config, methods, shared, under=under, **kw)).start()
            state["job"] = job
            lines: list[str] = []
            yield (state, "Comparing…", "", *empty, keep)
            for text in follow(job, progress, lines):
                yield (state, f"Comparing… **{job.progress_text}**", text, *empty, keep)
            if job.error:
                yield (state, f"**Error:** {job.error}", "\n".join(lines), *empty, keep)
                return
            comparison = job.result
            out = Path(tempfile.mkdtemp(prefix="hf-unlearn-compare-")) / "comparison"
            comparison.save(out)
            lines.append(f"done: {len(methods)} methods × {len(comparison.seeds)} seeds in "
                         f"{comparison.seconds:.1f} s")
            shown = (f"Done: {', '.join(methods)}; forget {comparison.first.forget.get('description')}; seeds "
                     f"{', '.join(map(str, comparison.seeds))}; {comparison.seconds:.1f} s.",
                     "\n".join(lines), comparison_table(comparison), str(out / "pareto.png"),
                     comparison_verdicts(comparison),
                     [str(out / name) for name in ("comparison.json", "comparison.md", "pareto.png")])
            entry = remember(state, f"compare {', '.join(methods)}, forget "
                             f"{comparison.first.forget.get('description')}, seeds "
                             f"{', '.join(map(str, comparison.seeds))}", "compare", shown, None)
            yield (state, *shown, gr.update(choices=history_choices(state), value=entry))

        def on_audit(state: dict, n_models: Any, progress: Any = gr.Progress(), **values: Any):
            from ..audit import run_audit
            from ..config import RunConfig

            state = dict(state or {})
            state.pop("result", None)  # Push sends this audit's checkpoint or nothing, never an earlier run's
            empty = (None, None, None)  # figure, scores, files
            keep = gr.update()
            try:
                keywords, tuned = apply_tuned(values, keywords_from_form(values))
                config = dataclasses.replace(
                    RunConfig.from_keywords(**{**keywords, "reference": "retrain", "seeds": None}), tuned=tuned)
                n = int(n_models)
                if n not in AUDIT_MODELS:
                    raise UnlearnError(f"choose N among {', '.join(map(str, AUDIT_MODELS))}")
            except (UnlearnError, TypeError, ValueError) as exc:
                yield (state, f"**Error:** {exc}", "", *empty, keep)
                return
            job = Job(lambda **kw: run_audit(config, n, **kw)).start()
            state["job"] = job
            lines: list[str] = []
            working = f"Auditing {config.method}: {2 * n} runs ({n} unlearned, {n} retrained or read from the cache)…"
            yield (state, working, "", *empty, keep)
            for text in follow(job, progress, lines, every_step=False):
                yield (state, f"{working}\n\n**{job.progress_text}**", text, *empty, keep)
            if job.error:
                yield (state, f"**Error:** {job.error}", "\n".join(lines), *empty, keep)
                return
            audit = job.result
            out = Path(tempfile.mkdtemp(prefix="hf-unlearn-audit-"))
            files = audit.files()
            write_files(out, files)
            lines.append(f"done: {2 * n} runs in {audit.seconds:.1f} s")
            shown = (audit_status(audit), "\n".join(lines), str(out / "epsilon_hist.png"), audit_table(audit),
                     [str(out / name) for name in files])
            entry = remember(state, f"audit {config.method}, forget {audit.report.forget.get('description')}, N = "
                             f"{n}: F {audit.metrics['forget_quality']:.4f}", "audit", shown, audit.first)
            state["result"] = state["history"][-1]["result"]  # Push sends the audited checkpoint
            yield (state, *shown, gr.update(choices=history_choices(state), value=entry))

        def on_open(state: dict, choice: str | None):
            """Show an earlier run or comparison of this session again (and make a run the one Push sends)."""
            state = dict(state or {})
            entry = next((e for e in state.get("history", []) if e["label"] == choice), None)
            views_outputs = {"unlearn": run_outputs, "compare": compare_outputs, "audit": audit_outputs}
            if entry is None:
                return (state, gr.update(), *(gr.update() for outs in views_outputs.values() for _ in outs))
            shown = [list(entry["shown"]) if entry["view"] == view else [gr.update()] * len(outs)
                     for view, outs in views_outputs.items()]
            if entry["view"] in ("unlearn", "audit"):  # Push sends the run on screen, or nothing
                state["result"] = entry.get("result")
                if entry.get("result") is None:
                    own = shown[list(views_outputs).index(entry["view"])]
                    own[0] = (f"{own[0]}\n\nOnly the last {KEEP_RESULTS} runs keep their model: run this one "
                              "again to push it.")
            return (state, gr.Tabs(selected=entry["view"]), *(v for part in shown for v in part))

        def on_cancel(state):
            job = (state or {}).get("job")
            if job is not None:
                job.cancel.set()
            return "Cancelling…"

        def on_push(state, hub_token, repo_id, private_repo, open_pr, oauth_token: gr.OAuthToken | None = None):
            from ..push import push_to_hub

            result = (state or {}).get("result")
            if result is None:
                return "**Error:** run an unlearning job first; there is nothing to push"
            if not repo_id:
                return "**Error:** give the target repo as namespace/name"
            token_value = oauth_token.token if oauth_token is not None else (hub_token or None)
            try:
                info = push_to_hub(result, repo_id.strip(), token=token_value, private=bool(private_repo) or None,
                                   create_pr=bool(open_pr))
            except UnlearnError as exc:
                return f"**Error:** {exc}"
            url = info.pr_url or info.commit_url
            return f"Pushed: [{url}]({url})"

        form["forget_kind"].change(on_kind, form["forget_kind"], kind_rows)
        form["method"].change(settings_rows, form["method"], form["settings"])
        offer_inputs = {k: form[k] for k in ("model", "dataset", *details, "method", "forget_kind", "tuned_file")}
        for name in ("model", "dataset", "method", "forget_kind", "tuned_file"):
            form[name].change(lambda **values: offer(values), inputs_kwargs=offer_inputs, outputs=tuned_info)
        app.load(lambda **values: offer(values), inputs_kwargs=offer_inputs, outputs=tuned_info)
        inspect_btn.click(on_inspect, inputs_kwargs={k: form[k] for k in ("model", "dataset", *details)},
                          outputs=[*pickers, *columns, ds_info, status])
        run_outputs = [status, log, table, metrics_json, per_class, mia, report_file, gallery]
        compare_outputs = [compare_status, compare_log, compare_table, pareto, verdicts, compare_files]
        run_evt = run_btn.click(
            on_run, inputs=[session], inputs_kwargs=form, outputs=[session, *run_outputs, history],
            api_name="run", concurrency_limit=1, concurrency_id=RUN_CONCURRENCY)
        cancel_btn.click(on_cancel, session, status, cancels=[run_evt], api_name="cancel", queue=False)
        compare_evt = compare_btn.click(
            on_compare, inputs=[session, compare_methods], inputs_kwargs=form,
            outputs=[session, *compare_outputs, history], api_name="compare", concurrency_limit=1,
            concurrency_id=RUN_CONCURRENCY, show_progress_on=[pareto])
        compare_cancel.click(on_cancel, session, compare_status, cancels=[compare_evt], api_name="cancel_compare",
                             queue=False)
        audit_outputs = [audit_status_md, audit_log, audit_plot, audit_scores, audit_files]
        audit_evt = audit_btn.click(
            on_audit, inputs=[session, audit_n], inputs_kwargs=form, outputs=[session, *audit_outputs, history],
            api_name="audit", concurrency_limit=1, concurrency_id=RUN_CONCURRENCY,
            show_progress_on=[audit_plot])  # one bar, where the figure will be; the status and log stay readable
        audit_cancel.click(on_cancel, session, audit_status_md, cancels=[audit_evt], api_name="cancel_audit",
                           queue=False)
        history.input(on_open, [session, history], [session, views, *run_outputs, *compare_outputs,
                                                    *audit_outputs], api_name="open")
        push_btn.click(on_push, [session, token, repo, private, create_pr], push_out, api_name="push")
    return app


def queued(app: Any) -> Any:
    """The production queue: light events 4 at a time, runs one at a time (their own slot), the rest wait."""
    return app.queue(default_concurrency_limit=4)


#: the largest upload the app stores (an index list or a settings file is far smaller; Gradio refuses larger
#: files before they reach the disk)
MAX_UPLOAD = "16mb"


def launch(**kwargs: Any) -> Any:
    """Build and launch with the production queue."""
    kwargs.setdefault("max_file_size", MAX_UPLOAD)
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
               max_file_size=MAX_UPLOAD)
    return app, f"http://127.0.0.1:{port}/"
