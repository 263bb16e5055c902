"""The Gradio app: choose a model, a dataset and what to forget; watch it unlearn; compare; push.

``app.py`` only builds and launches :func:`build_app`. Each run happens in a
worker thread of the user's own session (its result lives in ``gr.State``),
streams its log and progress, and can be cancelled: the engine checks the
session's cancel event every step and nothing is written before the end.
Runs share one concurrency slot so one GPU is never oversubscribed. Every
handler turns failures into a one-line message in the page.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from pathlib import Path
from typing import Any

from .errors import Cancelled, UnlearnError

DEMO = "demo: digits + small ResNet (offline)"
FORGET_KINDS = ["class", "random", "indices", "filter"]
RUN_CONCURRENCY = "unlearning-job"


def on_space() -> bool:
    return os.environ.get("SYSTEM") == "spaces" or bool(os.environ.get("SPACE_ID"))


# ------------------------------------------------------------------ pure helpers (tested without a browser)


def resolve_sources(model: str, dataset: str) -> tuple[str, str, dict[str, Any] | None]:
    """Model and dataset ids; the demo preset maps to its cached folders and its training recipe."""
    from .demo import DEMO_RECIPE, ensure_demo_assets

    model, dataset = (model or "").strip(), (dataset or "").strip()
    if not model or model == DEMO:
        model_dir, data_dir = ensure_demo_assets()
        return str(model_dir), str(data_dir) if not dataset or dataset == DEMO else dataset, DEMO_RECIPE
    if not dataset:
        raise UnlearnError("give a dataset (Hub id or local folder) for this model")
    return model, dataset, None


def inspect_dataset(model: str, dataset: str, config: str, train_split: str, test_split: str,
                    image_column: str, label_column: str) -> tuple[list[str], dict[str, Any]]:
    """Class names and detected columns/splits, for the user to confirm before running."""
    from .config import DataSource
    from .data import labelled_splits
    from .hub import load_dataset_dict

    _, dataset, _ = resolve_sources(model, dataset)
    src = DataSource(dataset, config=config or None, train_split=train_split or "train",
                     test_split=test_split or None, image_column=image_column or None,
                     label_column=label_column or None)
    dsd, _ = load_dataset_dict(src)
    s = labelled_splits(dsd, src)
    info = {"splits": {k: len(v) for k, v in dsd.items()}, "train_split": src.train_split,
            "test_split": s.test_split, "image_column": s.image_column, "label_column": s.label_column,
            "classes": len(s.class_names)}
    return s.class_names, info


def forget_spec(kind: str, classes: list[str] | None, percent: float, forget_seed: float, stratified: bool,
                indices_text: str, indices_file: str | None, filter_column: str, filter_value: str,
                retain_fraction: float) -> Any:
    """The ForgetSpec the form describes (errors name the field to fix)."""
    from .cli import parse_indices
    from .config import ForgetSpec

    common = {"seed": int(forget_seed or 0), "retain_fraction": float(retain_fraction or 1.0)}
    if kind == "class":
        if not classes:
            raise UnlearnError("choose at least one class to forget")
        return ForgetSpec(classes=tuple(classes), **common)
    if kind == "random":
        return ForgetSpec(fraction=float(percent) / 100.0, stratified=bool(stratified), **common)
    if kind == "indices":
        text = Path(indices_file).read_text() if indices_file else (indices_text or "")
        rows = parse_indices(text)
        if not rows:
            raise UnlearnError("the index list is empty: upload a file or type row numbers (e.g. 3, 17, 42)")
        return ForgetSpec(indices=rows, **common)
    if kind == "filter":
        if not filter_column or filter_value in (None, ""):
            raise UnlearnError("give both the filter column and the value to forget")
        return ForgetSpec(filter_column=filter_column, filter_value=filter_value, **common)
    raise UnlearnError(f"unknown forget kind '{kind}'")


def settings_rows(method: str) -> list[list[Any]]:
    """The method's documented settings as editable table rows: name, value, meaning."""
    from .methods import get_method

    return [[s["name"], str(s["default"]), s["help"]] for s in get_method(method).describe_settings()]


def settings_from_rows(method: str, rows: Any) -> dict[str, str]:
    """Only the settings the user changed (as strings; the method converts and checks them)."""
    defaults = {r[0]: r[1] for r in settings_rows(method)}
    if hasattr(rows, "values"):
        rows = rows.values.tolist()
    out = {}
    for row in rows or []:
        if len(row) >= 2 and row[0] in defaults and str(row[1]).strip() != defaults[row[0]]:
            out[str(row[0])] = str(row[1]).strip()
    return out


def metrics_rows(report: Any) -> list[list[Any]]:
    """Original / unlearned / retrain rows of the metrics table, with Avg.Gap."""
    cols = ("ua", "forget_acc", "ra", "ta", "mia_efficacy", "mia_loss", "forget_class_test_acc")
    rows = []
    for name, m in report.metrics.items():
        if not m:
            continue
        label = f"{report.method} (unlearned)" if name == "unlearned" else name
        gap = (report.avg_gap or {}).get(name)
        rows.append([label] + [None if m.get(c) is None else round(float(m[c]), 2) for c in cols]
                    + [None if gap is None else round(gap, 2)])
    return rows


METRIC_HEADERS = ["model", "UA", "forget acc", "RA", "TA", "MIA-efficacy", "MIA-loss", "forget-class test acc",
                  "Avg.Gap"]


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
        for label, values in (("forget", ev.forget_prob), ("retain", ev.retain_prob), ("test", ev.test_prob)):
            ax.hist(values, bins=bins, alpha=0.5, density=True, label=label)
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
    before = result.evaluations["original"].forget_pred
    after = result.evaluations["unlearned"].forget_pred
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


# ------------------------------------------------------------------ the job runner


class Job:
    """One unlearning run in a worker thread, reporting through a queue; cancellable."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self.cancel = threading.Event()
        self.events: queue.Queue = queue.Queue()
        self.result: Any = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="hf-unlearn-job", daemon=True)

    def _run(self) -> None:
        from .api import unlearn

        try:
            self.result = unlearn(progress=self.events.put, cancel=self.cancel, **self.kwargs)
        except Cancelled:
            self.error = "cancelled: the run was stopped and nothing was kept"
        except UnlearnError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - the page shows one line, never a traceback
            self.error = f"unexpected error ({type(exc).__name__}): {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            self.events.put(None)

    def start(self) -> Job:
        self.thread.start()
        return self


def _log_line(ev: dict[str, Any]) -> str:
    return f"{ev.get('phase')}: epoch {ev.get('epoch')}/{ev.get('epochs')} step {ev.get('step')}/{ev.get('steps')} " \
           f"loss {ev.get('loss', float('nan')):.4f}"


# ------------------------------------------------------------------ the Blocks


def build_app() -> Any:
    """The app's Blocks (built, not launched)."""
    import gradio as gr

    from .methods import available_methods

    with gr.Blocks(title="hf-unlearn") as app:
        session = gr.State({})
        gr.Markdown("# hf-unlearn\nMake an image classifier **forget** a class or a subset of its training data, "
                    "see how well it forgot and what it kept (against retraining), and push the result to the Hub.")
        with gr.Row():
            model = gr.Dropdown([DEMO], value=DEMO, allow_custom_value=True, label="Model (Hub id or local folder)")
            dataset = gr.Dropdown([DEMO], value=DEMO, allow_custom_value=True, label="Dataset (Hub id or folder)")
        with gr.Accordion("Dataset details", open=False):
            with gr.Row():
                ds_config = gr.Textbox(value="", label="config", placeholder="default")
                train_split = gr.Textbox(value="train", label="train split")
                test_split = gr.Textbox(value="", label="test split", placeholder="detected")
                image_column = gr.Textbox(value="", label="image column", placeholder="detected")
                label_column = gr.Textbox(value="", label="label column", placeholder="detected")
            inspect_btn = gr.Button("Inspect dataset")
            ds_info = gr.JSON(label="Detected")
        with gr.Row():
            kind = gr.Radio(FORGET_KINDS, value="class", label="Forget")
            classes = gr.Dropdown([str(i) for i in range(10)], value=["3"], multiselect=True,
                                  allow_custom_value=True, label="Classes to forget", elem_id="forget-classes")
        with gr.Row():
            percent = gr.Slider(1, 50, value=10, step=1, label="random: % of the training split")
            forget_seed = gr.Number(value=0, precision=0, label="random: seed")
            stratified = gr.Checkbox(label="random: stratified by class")
        with gr.Row():
            indices_text = gr.Textbox(value="", label="indices: row numbers", placeholder="3, 17, 42")
            indices_file = gr.File(label="indices: upload a list (one per line or JSON)", type="filepath")
            filter_column = gr.Textbox(value="", label="filter: column")
            filter_value = gr.Textbox(value="", label="filter: value")
        with gr.Row():
            method = gr.Dropdown(available_methods(), value="rbm", label="Method", elem_id="method")
            epochs = gr.Number(value=2, precision=0, label="epochs (0 = method default)")
            batch_size = gr.Number(value=0, precision=0, label="batch size (0 = default)")
            precision = gr.Radio(["no", "bf16", "fp16"], value="no", label="mixed precision")
            retain_fraction = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="retain fraction")
            with_retrain = gr.Checkbox(value=True, label="also compute the Retrain reference")
            seed = gr.Number(value=0, precision=0, label="seed")
        with gr.Accordion("Method settings (from the method's documentation; edit values)", open=False):
            settings = gr.Dataframe(settings_rows("rbm"), headers=["setting", "value", "meaning"],
                                    interactive=True, wrap=True)
        with gr.Row():
            run_btn = gr.Button("Unlearn", variant="primary", elem_id="run")
            cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel")
        status = gr.Markdown(elem_id="status")
        log = gr.Textbox(label="Log", lines=6, max_lines=12, autoscroll=True)
        table = gr.Dataframe(headers=METRIC_HEADERS, label="Metrics (%)", elem_id="metrics", interactive=False)
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

        def on_method(name: str) -> Any:
            return settings_rows(name)

        def on_inspect(m, d, c, tr, te, ic, lc):
            try:
                names, info = inspect_dataset(m, d, c, tr, te, ic, lc)
            except UnlearnError as exc:
                return gr.update(), None, f"**Error:** {exc}"
            return gr.update(choices=names, value=names[:1]), info, f"Dataset has {len(names)} classes."

        def on_run(state, model_id, dataset_id, config, train_split_, test_split_, image_column_, label_column_,
                   forget_kind, forget_classes, random_percent, random_seed, stratified_, index_list, index_file,
                   filter_column_, filter_value_, method_, epochs_, batch_size_, precision_, retain_fraction_,
                   with_retrain_, seed_, settings_table, progress=gr.Progress()):
            state = dict(state or {})
            state.pop("result", None)
            empty = (None, None, None, None, None)  # table, metrics JSON, two plots, report file
            try:
                model_path, data_path, recipe = resolve_sources(model_id, dataset_id)
                spec = forget_spec(forget_kind, forget_classes, random_percent, random_seed, stratified_, index_list,
                                   index_file, filter_column_, filter_value_, retain_fraction_)
                overrides: dict[str, Any] = settings_from_rows(method_, settings_table)
                if epochs_ and int(epochs_) > 0:
                    overrides["epochs"] = int(epochs_)
                if batch_size_ and int(batch_size_) > 0:
                    overrides["batch_size"] = int(batch_size_)
                kwargs = dict(model=model_path, dataset=data_path, forget=spec, method=method_,
                              dataset_config=config or None, train_split=train_split_ or "train",
                              test_split=test_split_ or None, image_column=image_column_ or None,
                              label_column=label_column_ or None, reference="retrain" if with_retrain_ else None,
                              retrain_settings=recipe, seed=int(seed_ or 0), mixed_precision=precision_,
                              **overrides)
            except UnlearnError as exc:
                yield (state, f"**Error:** {exc}", "", *empty, [])
                return
            job = Job(kwargs).start()
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
                        lines.append(_log_line(ev))
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
                   "\n".join(lines), metrics_rows(report), report.to_dict()["metrics"], str(plot), str(hist),
                   str(out / "unlearning_report.json"), forget_gallery(result))

        def on_cancel(state):
            job = (state or {}).get("job")
            if job is not None:
                job.cancel.set()
            return "Cancelling…"

        def on_push(state, hub_token, repo_id, private_repo, open_pr, oauth_token: gr.OAuthToken | None = None):
            from .push import push_to_hub

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

        method.change(on_method, method, settings)
        inspect_btn.click(on_inspect, [model, dataset, ds_config, train_split, test_split, image_column,
                                       label_column], [classes, ds_info, status])
        run_evt = run_btn.click(
            on_run,
            [session, model, dataset, ds_config, train_split, test_split, image_column, label_column, kind, classes,
             percent, forget_seed, stratified, indices_text, indices_file, filter_column, filter_value, method,
             epochs, batch_size, precision, retain_fraction, with_retrain, seed, settings],
            [session, status, log, table, metrics_json, per_class, mia, report_file, gallery],
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


__all__ = ["DEMO", "build_app", "launch", "queued"]
