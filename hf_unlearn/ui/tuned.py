"""The app's offer of tuned settings: found for the chosen model, dataset, request kind and method, shown beside
the defaults, and applied to a run or a comparison when the user keeps the box ticked.

A settings file uploaded in the form comes first; else the tuned-settings store that ``hf-unlearn tune`` fills
(:func:`hf_unlearn.tuning.recall`). Nothing is tuned in the app itself: a tuning runs dozens of trials, a job for
the CLI or a GPU, not for a public Space's request.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..errors import UnlearnError
from .form import source_keywords


def find_tuning(values: dict[str, Any], method: str | None = None) -> tuple[Any, str]:
    """(the tuning that covers ``method`` for the form's sources and request kind, or None; where it came from)."""
    from ..forget import available_kinds
    from ..methods import get_method
    from ..tuning import Tuning, recall, source_key

    keywords, _ = source_keywords(values)
    name = get_method(method or keywords.get("method") or "ft").name
    upload = values.get("tuned_file")
    if upload:
        tuning = Tuning.load(upload)
        if name not in tuning.methods:
            raise UnlearnError(f"the uploaded file has tuned settings for {', '.join(tuning.methods)}, not for "
                               f"{name}: choose one of those, or remove the file to use {name}'s defaults")
        return tuning, Path(str(upload)).name
    kind = values.get("forget_kind") or available_kinds()[0]
    key = source_key(keywords["model"], keywords.get("revision"), keywords["dataset"], keywords.get("dataset_config"),
                     kind, name)
    return recall(key), "the tuned-settings cache"


def offer(values: dict[str, Any]) -> str:
    """What the form says about tuned settings for its method: the tuning's summary and the defaults beside the
    tuned values, or that there are none (and how to make them)."""
    from ..fields import default_of
    from ..methods import get_method
    from ..tuning import fmt_value

    try:
        tuning, where = find_tuning(values)
        method = get_method((source_keywords(values)[0]).get("method") or "ft")
    except UnlearnError as exc:
        return f"**Tuned settings:** {exc}"
    if tuning is None:
        return (f"No tuned settings for **{method.name}** on this model, dataset and kind of request: the defaults "
                "are used (tune them with `hf-unlearn tune`, or upload a settings file).")
    tuned = tuning.methods[method.name]
    defaults = {f.name: default_of(f) for f in dataclasses.fields(method.settings_cls)}
    rows = "\n".join(f"| {k} | {fmt_value(defaults.get(k))} | {fmt_value(v)} |" for k, v in tuned.settings.items())
    head = (f"**Tuned settings for {method.name}** (from {where}; for {tuning.request.get('description')}): "
            f"{tuned.summary(len(tuning.proxies))}.")
    if not tuned.beats_none:
        head += " With the box ticked, a run returns the untouched model (method none)."
    return f"{head}\n\n| setting | default | tuned |\n|---|---|---|\n{rows}"


def apply_tuned(values: dict[str, Any], keywords: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A run's keywords with the tuned settings under the user's own edits (or method ``none`` when the tuning found
    nothing better), and the record the report keeps; unchanged when the box is off or nothing was tuned."""
    from ..compare import split_keywords

    if not values.get("use_tuned"):
        return keywords, None
    tuning, where = find_tuning(values)
    if tuning is None:
        return keywords, None
    method = keywords.get("method") or "ft"
    name, tuned, _ = tuning.choice(method)
    config_part, own = split_keywords(keywords)
    record = tuning.record(method, where)
    if name == "none":
        return {**config_part, "method": "none"}, record
    return {**config_part, **tuned, **own}, record


def tuned_for_comparison(values: dict[str, Any], methods: list[str]) -> dict[str, dict[str, Any]]:
    """Each compared method's tuned settings (best trial) when the box is ticked: from the uploaded file (the
    methods it covers) or the store; the rest keep their defaults."""
    from ..methods import get_method
    from ..tuning import Tuning

    if not values.get("use_tuned"):
        return {}
    names = [get_method(m).name for m in methods if get_method(m).name != "none"]
    if values.get("tuned_file"):
        tuning = Tuning.load(values["tuned_file"])
        return {m: dict(t.settings) for m, t in tuning.methods.items() if m in names}
    out = {}
    for name in names:
        tuning, _ = find_tuning(values, name)
        if tuning is not None:
            out[name] = dict(tuning.methods[name].settings)
    return out
