"""The app's form, generated from the run configuration's fields and the registered forget kinds.

Each input is named as the configuration keyword (``dataset_config``,
``seed``) or the kind input (``forget_classes``) it fills, so the Run button
hands one mapping of names to values to :func:`keywords_from_form`, and the
app's API (``gradio_client``) takes the same names. Fields declared with an
``app`` panel appear in that panel; nothing here lists them by hand.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import fields as F
from ..config import SECTIONS, RunConfig, config_keywords
from ..errors import UnlearnError
from ..forget import ForgetSpec, KindInput, all_kinds, form_name, spec_from_form

DEMO = "demo: digits + small ResNet (offline)"
#: values the app starts with where they differ from the library's defaults (the app shows a seed method)
APP_DEFAULTS: dict[str, Any] = {"method": "rbm"}
#: method settings the app offers on the form itself (0 = the method's default); the rest are in its table
SHORTCUTS = {"epochs": ("epochs (0 = method default)", 2), "batch_size": ("batch size (0 = default)", 0)}


def panel_fields(panel: str) -> list[tuple[type, dataclasses.Field]]:
    """(owner, field) of every documented field shown in an app panel, in declaration order."""
    owners = [*SECTIONS.values(), RunConfig, ForgetSpec]
    return [(cls, f) for cls in owners for f in dataclasses.fields(cls) if F.meta(f, "app") == panel]


def field_control(cls: type, f: dataclasses.Field) -> Any:
    """The Gradio component of one configuration field (its label, default and choices from the declaration)."""
    import gradio as gr

    from ..methods import available_methods

    name, label = F.keyword_of(f), F.meta(f, "label") or F.keyword_of(f)
    typ, default = F.base_type(F.field_types(cls)[f.name]), APP_DEFAULTS.get(F.keyword_of(f), F.default_of(f))
    widget = F.meta(f, "widget") or {}
    if F.meta(f, "app") == "sources":
        return gr.Dropdown([DEMO], value=DEMO, allow_custom_value=True, label=label, elem_id=name)
    if name == "method":
        return gr.Dropdown(available_methods(), value=default, label=label, elem_id="method")
    if F.meta(f, "choices"):
        return gr.Radio(list(F.meta(f, "choices")), value=default, label=label)
    if widget.get("type") == "slider":
        args = {k: v for k, v in widget.items() if k != "type"}
        return gr.Slider(value=default, label=label, **args)
    if typ is bool:
        return gr.Checkbox(value=default, label=label)
    if typ in (int, float):
        return gr.Number(value=default, precision=0 if typ is int else None, label=label)
    placeholder = widget.get("placeholder", "detected" if default is None else "")
    return gr.Textbox(value=default or "", label=label, placeholder=placeholder)


def controls(panel: str, skip: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """form name → component of every field in an app panel (built inside the caller's layout)."""
    return {F.keyword_of(f): field_control(cls, f) for cls, f in panel_fields(panel)
            if F.keyword_of(f) not in skip and (only is None or F.keyword_of(f) in only)}


def data_source(values: dict[str, Any]) -> Any:
    """The DataSource a form's sources and details describe (for "Inspect dataset")."""
    from ..config import DataSource

    keywords, _ = source_keywords(values)
    wanted = {f.name: keywords[kw] for kw, (section, f) in config_keywords().items()
              if section == "data" and kw in keywords}
    return F.build(DataSource, wanted, "the dataset")


def kind_control(inp: KindInput) -> Any:
    """The Gradio component of one forget-kind input."""
    import gradio as gr

    args = dict(inp.widget_args)
    label = inp.label or inp.name
    if inp.widget == "classes":  # the demo's digits until "Inspect dataset" reads the dataset's class names
        return gr.Dropdown([str(i) for i in range(10)], value=["3"], multiselect=True, allow_custom_value=True,
                           label=label, elem_id="forget-classes")
    if inp.widget == "slider":
        return gr.Slider(label=label, **args)
    if inp.widget == "checkbox":
        return gr.Checkbox(label=label, **args)
    if inp.widget == "number":
        return gr.Number(label=label, **args)
    if inp.widget == "file":
        return gr.File(label=label, type="filepath", **args)
    return gr.Textbox(value="", label=label, **args)


def kind_controls() -> dict[str, dict[str, Any]]:
    """kind name → {form name: component} of its app inputs (built inside the caller's layout)."""
    import gradio as gr

    out: dict[str, dict[str, Any]] = {}
    for i, kind in enumerate(all_kinds()):
        with gr.Row(visible=i == 0) as row:
            out[kind.name] = {form_name(inp.name): kind_control(inp) for inp in kind.all_inputs() if inp.widget}
        out[kind.name]["__row__"] = row
    return out


def resolve_sources(model: str, dataset: str) -> tuple[str, str, dict[str, Any] | None]:
    """Model and dataset ids; the demo preset maps to its cached folders and its training recipe."""
    from ..demo import DEMO_RECIPE, ensure_demo_assets

    model, dataset = (model or "").strip(), (dataset or "").strip()
    if not model or model == DEMO:
        model_dir, data_dir = ensure_demo_assets()
        return str(model_dir), str(data_dir) if not dataset or dataset == DEMO else dataset, DEMO_RECIPE
    if not dataset:
        raise UnlearnError("give a dataset (Hub id or local folder) for this model")
    return model, dataset, None


def source_keywords(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The sources' keywords of a form (empty boxes mean "the default"), and the demo's recipe if it was chosen."""
    model, dataset, recipe = resolve_sources(values.get("model", ""), values.get("dataset", ""))
    keywords = {k: v for k, v in values.items() if k in config_keywords() and v not in ("", None)}
    return {**keywords, "model": model, "dataset": dataset}, recipe


def keywords_from_form(values: dict[str, Any]) -> dict[str, Any]:
    """The flat configuration keywords a filled-in form describes (what ``RunConfig.from_keywords`` takes)."""
    from .views import settings_from_rows

    keywords, recipe = source_keywords(values)
    method = values.get("method") or "ft"
    settings = settings_from_rows(method, values.get("settings"))
    for name in SHORTCUTS:
        if values.get(name) and int(values[name]) > 0:
            settings[name] = int(values[name])
    return {**keywords, "forget": spec_from_form(values, kind=values.get("forget_kind") or "class"),
            "method": method, "reference": "retrain" if values.get("with_retrain") else None,
            "retrain_settings": recipe, **settings}
