"""The Gradio app: choose a model, a dataset and what to forget; watch it unlearn; compare; push.

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

import os
import queue
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UnlearnError
from .form import SHORTCUTS, class_pickers, controls, data_source, keywords_from_form, kind_controls
from .jobs import Job, log_line
from .views import forget_gallery, metric_headers, metrics_table, mia_histogram, settings_rows

RUN_CONCURRENCY = "unlearning-job"


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
            "classes": len(s.class_names)}
    return s.class_names, info


def build_app() -> Any:
    """The app's Blocks (built, not launched)."""
    import gradio as gr

    from ..forget import available_kinds

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
            form["with_retrain"] = gr.Checkbox(value=True, label="also compute the Retrain reference")
        with gr.Accordion("Method settings (from the method's documentation; edit values)", open=False):
            form["settings"] = gr.Dataframe(settings_rows(form["method"].value), interactive=True, wrap=True,
                                            headers=["setting", "value", "meaning"])
        with gr.Row():
            run_btn = gr.Button("Unlearn", variant="primary", elem_id="run")
            cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel")
        status = gr.Markdown(elem_id="status")
        log = gr.Textbox(label="Log", lines=6, max_lines=12, autoscroll=True)
        table = gr.Dataframe(headers=metric_headers(), label="Metrics (%)", elem_id="metrics", interactive=False)
        metrics_json = gr.JSON(label="Metrics (JSON)", visible=False)
        with gr.Row():
            per_class = gr.Image(label="Per-class test accuracy", type="filepath", elem_id="per-class")
            mia = gr.Image(label="MIA confidence histograms", type="filepath")
        gallery = gr.Gallery(label="Forget-set images: prediction before → after", columns=8, height="auto")
        report_file = gr.File(label="Report (JSON)")
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

        def on_inspect(**values: Any) -> tuple[Any, ...]:
            try:
                names, info = inspect_dataset(values)
            except UnlearnError as exc:
                return (*(gr.update() for _ in pickers), None, f"**Error:** {exc}")
            picked = [gr.update(choices=names, value=names[:1]) for _ in pickers]
            return (*picked, info, f"Dataset has {len(names)} classes.")

        def on_run(state: dict, progress: Any = gr.Progress(), **values: Any):
            from ..config import RunConfig

            state = dict(state or {})
            state.pop("result", None)
            empty = (None, None, None, None, None)  # table, metrics JSON, two plots, report file
            try:
                config = RunConfig.from_keywords(**keywords_from_form(values))
            except UnlearnError as exc:
                yield (state, f"**Error:** {exc}", "", *empty, [])
                return
            job = Job(config).start()
            state["job"] = job
            lines: list[str] = []
            yield (state, "Running…", "", *empty, [])
            try:
                while True:
                    try:
                        ev = job.events.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    if ev is None:
                        break
                    progress((ev["step"], ev["steps"]), desc=f"{ev['phase']} epoch {ev['epoch']}/{ev['epochs']}")
                    if ev["step"] == ev["steps"] or ev["step"] % max(1, ev["steps"] // (ev["epochs"] * 4)) == 0:
                        lines.append(log_line(ev))
                        yield (state, "Running…", "\n".join(lines[-200:]), *empty, [])
            finally:
                job.cancel.set()  # a cancelled or closed page stops the worker too
            if job.error:
                yield (state, f"**Error:** {job.error}", "\n".join(lines), *empty, [])
                return
            result = job.result
            state["result"] = result
            out = Path(tempfile.mkdtemp(prefix="hf-unlearn-ui-"))
            report = result.report
            (out / "unlearning_report.json").write_text(report.to_json())
            plot = report.plot_per_class(out / "per_class.png")
            hist = mia_histogram(result, out / "mia.png")
            lines.append(f"done: unlearning took {report.rte_s:.1f} s")
            yield (state, f"Done: {report.method}, forget {report.forget.get('description')}.",
                   "\n".join(lines), metrics_table(report), report.to_dict()["metrics"], str(plot), str(hist),
                   str(out / "unlearning_report.json"), forget_gallery(result))

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
        inspect_btn.click(on_inspect, inputs_kwargs={k: form[k] for k in ("model", "dataset", *details)},
                          outputs=[*pickers, ds_info, status])
        run_evt = run_btn.click(
            on_run, inputs=[session], inputs_kwargs=form,
            outputs=[session, status, log, table, metrics_json, per_class, mia, report_file, gallery],
            api_name="run", concurrency_limit=1, concurrency_id=RUN_CONCURRENCY)
        cancel_btn.click(on_cancel, session, status, cancels=[run_evt], api_name="cancel", queue=False)
        push_btn.click(on_push, [session, token, repo, private, create_pr], push_out, api_name="push")
    return app


def queued(app: Any) -> Any:
    """The production queue: light events 4 at a time, runs one at a time (their own slot), the rest wait."""
    return app.queue(default_concurrency_limit=4)


def launch(**kwargs: Any) -> Any:
    """Build and launch with the production queue."""
    return queued(build_app()).launch(**kwargs)
