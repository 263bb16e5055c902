"""The app's form, generated from the run configuration's fields and the registered forget kinds.

Each control is an :class:`~hf_unlearn.fields.Input`, the same object the CLI
makes its flags from, named as the configuration keyword (``dataset_config``,
``seed``) or the kind input (``forget_classes``) it fills. The Run button hands
one mapping of names to values to :func:`keywords_from_form`, and the app's API
(``gradio_client``) takes the same names. Fields declared with an ``app`` panel
appear in that panel; nothing here lists them by hand.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .. import fields as F
from ..config import SECTIONS, TOP_LEVEL, RunConfig, config_keywords
from ..errors import UnlearnError
from ..forget import ForgetSpec, all_kinds, available_kinds, form_name, spec_from_form

DEMO = "demo: digits + small ResNet (offline)"
#: values the app starts with where they differ from the library's defaults (the app shows a seed method)
APP_DEFAULTS: dict[str, Any] = {"method": "rbm"}
#: method settings the app shows beside the method as well as in its table: the two show one value (editing
#: either changes both, choosing a method resets both to its defaults), and a comparison applies a changed one to
#: every method
SHORTCUTS = {"epochs": "epochs", "batch_size": "batch size"}
#: the forget kind whose draw has a seed of its own (the form shows the forget seed with it alone)
RANDOM_KIND = "random"
#: the panels that hold configuration fields, in the page's order
PANELS = ("sources", "details", "forget", "run")


def panel_inputs(panel: str) -> tuple[F.Input, ...]:
    """The inputs of every documented field shown in an app panel, in declaration order."""
    out: list[F.Input] = []
    for cls in (*SECTIONS.values(), RunConfig, ForgetSpec):
        names = tuple(f.name for f in dataclasses.fields(cls) if F.meta(f, "app") == panel)
        if names:
            out += F.field_inputs(cls, only=names)
    return tuple(out)


def input_control(inp: F.Input, name: str | None = None) -> Any:
    """The Gradio component of one input (its label, first value and choices from the field's declaration)."""
    import gradio as gr

    from ..methods import available_methods

    name, label, args = name or inp.name, inp.label or inp.name, dict(inp.widget_args)
    value = APP_DEFAULTS.get(name, inp.default)
    if inp.widget == "preset":  # the demo, then the presets of real Hub models (and their datasets)
        from ..presets import PRESETS

        listed = [p.label for p in PRESETS] if name == "model" else list(dict.fromkeys(p.dataset for p in PRESETS))
        return gr.Dropdown([DEMO, *listed], value=DEMO, allow_custom_value=True, label=label, elem_id=name)
    if inp.widget == "method":
        return gr.Dropdown(available_methods(), value=value, label=label, elem_id="method")
    if inp.widget == "choice":
        return gr.Radio(list(inp.choices or ()), value=value, label=label)
    if inp.widget == "slider":
        return gr.Slider(value=args.pop("value", value), label=label, **args)
    if inp.widget == "checkbox":
        return gr.Checkbox(value=bool(value), label=label)
    if inp.widget == "number":
        return gr.Number(value=value, label=label, **args)
    if inp.widget == "classes":  # the demo's digits until "Inspect dataset" reads the dataset's class names
        return gr.Dropdown([str(i) for i in range(10)], value=["3"], multiselect=True, allow_custom_value=True,
                           label=label, elem_id="forget-classes")
    if inp.widget == "columns":  # empty until "Inspect dataset" reads the dataset's columns; any name may be typed
        return gr.Dropdown([], value="", allow_custom_value=True, label=label, elem_id=name.replace("_", "-"))
    if inp.widget == "file":
        return gr.File(label=label, type="filepath")
    placeholder = args.pop("placeholder", "detected" if value is None else "")
    return gr.Textbox(value=value or "", label=label, placeholder=placeholder, **args)


def controls(panel: str, skip: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """form name → component of every field in an app panel (built inside the caller's layout)."""
    return {inp.name: input_control(inp) for inp in panel_inputs(panel)
            if inp.name not in skip and (only is None or inp.name in only)}


def kind_controls() -> dict[str, dict[str, Any]]:
    """kind name → {form name: component} of its app inputs, each kind in a row of its own (``"__row__"``)."""
    import gradio as gr

    out: dict[str, dict[str, Any]] = {}
    for i, kind in enumerate(all_kinds()):
        with gr.Row(visible=i == 0, elem_id=f"kind-{kind.name}") as row:
            out[kind.name] = {form_name(inp.name): input_control(inp, form_name(inp.name))
                              for inp in kind.all_inputs() if inp.widget}
        out[kind.name]["__row__"] = row
    return out


def pickers(widget: str) -> list[str]:
    """Form names of the kinds' ``classes`` or ``columns`` pickers ("Inspect dataset" fills them with the
    dataset's class names, or its columns)."""
    return [form_name(inp.name) for kind in all_kinds() for inp in kind.all_inputs() if inp.widget == widget]


def class_pickers() -> list[str]:
    return pickers("classes")


def resolve_sources(model: str, dataset: str) -> tuple[str, str, dict[str, Any] | None]:
    """Model and dataset ids; the demo preset maps to its cached folders and its training recipe."""
    from ..demo import DEMO_RECIPE, ensure_demo_assets
    from ..presets import find_preset

    model, dataset = (model or "").strip(), (dataset or "").strip()
    preset = find_preset(model)
    if preset is not None:
        model, dataset = preset.model, preset.dataset if dataset in ("", DEMO, preset.label) else dataset
    elif model and model != DEMO and dataset == DEMO:
        raise UnlearnError("the dataset box still holds the demo's digits: give the dataset this model was trained "
                           "on (a Hub id or a local folder), or pick a preset")
    if not model or model == DEMO:
        model_dir, data_dir = ensure_demo_assets()
        return str(model_dir), str(data_dir) if not dataset or dataset == DEMO else dataset, DEMO_RECIPE
    if not dataset:
        raise UnlearnError("give a dataset (Hub id or local folder) for this model")
    return model, dataset, None


def source_keywords(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The configuration keywords of a form (empty boxes mean "the default"), and the demo's recipe if chosen."""
    wanted = set(config_keywords()) | set(TOP_LEVEL)
    inputs = tuple(inp for panel in PANELS for inp in panel_inputs(panel) if inp.name in wanted)
    keywords = F.parse_inputs(inputs, values)
    model, dataset, recipe = resolve_sources(values.get("model", ""), values.get("dataset", ""))
    from ..presets import find_preset

    preset = find_preset(values.get("model", ""))
    if preset is not None and dataset == preset.dataset:  # an API caller naming a preset gets its details too
        keywords.update({k: v for k, v in preset_details(preset).items() if v and not keywords.get(k)})
    return {**keywords, "model": model, "dataset": dataset}, recipe


def data_source(values: dict[str, Any]) -> Any:
    """The DataSource a form's sources and details describe (for "Inspect dataset")."""
    from ..config import DataSource

    keywords, _ = source_keywords(values)
    wanted = {f.name: keywords[kw] for kw, (section, f) in config_keywords().items()
              if section == "data" and kw in keywords}
    return F.build(DataSource, wanted, "the dataset")


def keywords_from_form(values: dict[str, Any], per_method: bool = True) -> dict[str, Any]:
    """The flat configuration keywords a filled-in form describes (what ``RunConfig.from_keywords`` takes).

    ``per_method=False`` (a comparison): the settings table, which belongs to the chosen method, is left out;
    the epochs and batch-size boxes still apply.
    """
    from .views import settings_from_rows

    keywords, recipe = source_keywords(values)
    method = keywords.get("method") or "ft"
    settings = settings_from_rows(method, values.get("settings")) if per_method else {}
    # a box is an edit where it differs from the table's own row (the page keeps the two equal; an API caller who
    # sends only ``epochs=1`` edits it), and only for a setting the method has
    shown = dict(table_rows(values.get("settings")))
    own = shortcut_defaults(method)
    for name in SHORTCUTS:
        value = values.get(name)
        if is_number(value) and int(float(value)) > 0 and name in own and str(int(float(value))) != shown.get(name):
            settings[name] = int(float(value))
    kind = values.get("forget_kind") or available_kinds()[0]
    return {**keywords, "forget": spec_from_form(values, kind=kind),
            "reference": "retrain" if values.get("with_retrain") else None, "retrain_settings": recipe, **settings}


def shortcut_defaults(method: str) -> dict[str, int]:
    """The method's own epochs and batch size (what the boxes beside the method show until edited); a method
    without such a setting has no entry."""
    from ..methods import get_method

    out = {}
    for setting in get_method(method).describe_settings():
        if setting["name"] in SHORTCUTS:
            try:
                out[setting["name"]] = int(setting["default"])
            except (TypeError, ValueError):
                continue
    return out


def preset_details(preset: Any) -> dict[str, str]:
    """The details a preset fills in (form name → value): its dataset's config, splits and columns, and the base
    Retrain restarts from (several cards name it only in prose, where the run cannot read it)."""
    return {"dataset_config": preset.dataset_config or "", "train_split": preset.train_split,
            "test_split": preset.test_split, "image_column": preset.image_column,
            "label_column": preset.label_column, "retrain_base": preset.base_model or ""}


def table_lists(rows: Any) -> list[list[Any]]:
    """The settings table as lists of cells, whichever form Gradio hands it over in (a DataFrame in the page,
    ``{"headers", "data"}`` through the API, plain lists from a caller)."""
    if hasattr(rows, "values"):
        rows = rows.values.tolist()
    if isinstance(rows, dict):
        rows = rows.get("data")
    return [list(r) for r in rows or []]


def table_rows(rows: Any) -> list[tuple[str, str]]:
    """(setting, value) pairs of the settings table; blank rows (one a user added) are skipped."""
    return [(str(r[0]).strip(), str(r[1]).strip()) for r in table_lists(rows) if len(r) >= 2 and str(r[0]).strip()]


def with_settings(rows: Any, values: dict[str, Any]) -> list[list[Any]]:
    """The settings table with ``values`` written into their rows (a box beside the method was edited)."""
    out = table_lists(rows)
    for row in out:
        value = values.get(row[0]) if len(row) >= 2 else None
        if is_number(value) and float(value) > 0:
            row[1] = str(int(float(value)))
    return out


def is_number(value: Any) -> bool:
    """A finite number (what a numeric box may hold; "nan" and "inf" are not settings)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
