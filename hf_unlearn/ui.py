"""The Gradio app: pick a model, a dataset and what to forget; run; read the metrics.

``app.py`` only builds and launches :func:`build_app`. Every handler returns
a readable message instead of raising, so the page never shows a traceback.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .errors import UnlearnError

DEMO_CHOICE = "offline demo: digits + small ResNet"


def run_job(model: str, dataset: str, forget_class: str, method: str, epochs: float,
            with_retrain: bool) -> tuple[str, str | None]:
    """Run one unlearning job; returns (markdown, per-class plot path) or an error line."""
    from .api import unlearn
    from .demo import DEMO_RECIPE, ensure_demo_assets

    try:
        retrain_settings = None
        if not model or model == DEMO_CHOICE:
            model_dir, data_dir = ensure_demo_assets()
            model, dataset = str(model_dir), str(data_dir)
            retrain_settings = DEMO_RECIPE
        if not forget_class:
            raise UnlearnError("choose a class to forget")
        result = unlearn(model, dataset, str(forget_class), method=method, epochs=int(epochs),
                         reference="retrain" if with_retrain else None, retrain_settings=retrain_settings)
    except UnlearnError as exc:
        return f"**Error:** {exc}", None
    plot = Path(tempfile.mkdtemp(prefix="hf-unlearn-ui-")) / "per_class.png"
    result.report.plot_per_class(plot)
    return result.report.markdown(), str(plot)


def build_app() -> Any:
    """The Blocks of the app (built, not launched)."""
    import gradio as gr

    from .methods import available_methods

    with gr.Blocks(title="hf-unlearn") as app:
        gr.Markdown("# hf-unlearn\nMake an image classifier forget a class, and compare it with retraining.")
        with gr.Row():
            model = gr.Textbox(value=DEMO_CHOICE, label="Model (Hub id, local folder, or the offline demo)")
            dataset = gr.Textbox(value="", label="Dataset (Hub id or local folder; ignored for the demo)")
        with gr.Row():
            forget_class = gr.Dropdown([str(i) for i in range(10)], value="3", label="Class to forget",
                                       allow_custom_value=True)
            method = gr.Dropdown(available_methods(), value="ft", label="Method")
            epochs = gr.Number(value=2, precision=0, label="Epochs")
            with_retrain = gr.Checkbox(value=True, label="Also compute the Retrain reference")
        run = gr.Button("Unlearn", variant="primary")
        table = gr.Markdown()
        plot = gr.Image(label="Per-class test accuracy", type="filepath")
        run.click(run_job, [model, dataset, forget_class, method, epochs, with_retrain], [table, plot],
                  api_name="run", concurrency_limit=1)
    return app
