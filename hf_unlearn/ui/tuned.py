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


def find_tuning(values: dict[str, Any], method: str | None = None) -> tuple[Any, str, str]:
    """(the tuning that covers ``method`` (default: the form's) for the form's sources and request kind, or None;
    where it came from; the method's registered name)."""
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
        return tuning, Path(str(upload)).name, name
    kind = values.get("forget_kind") or available_kinds()[0]
    key = source_key(keywords["model"], keywords.get("revision"), keywords["dataset"], keywords.get("dataset_config"),
                     kind, name)
    return recall(key), "the tuned-settings cache", name


def offer(values: dict[str, Any]) -> str:
    """What the form says about tuned settings for its method: the tuning's summary and the defaults beside the
    tuned values, or that there are none (and how to make them)."""
    from ..fields import default_of
    from ..methods import get_method
    from ..tuning import fmt_value

    try:
        tuning, where, name = find_tuning(values)
    except UnlearnError as exc:
        return f"**Tuned settings:** {exc}"
    method = get_method(name)
    if tuning is None:
        return (f"No tuned settings for **{method.name}** on this model, dataset and kind of request: its defaults "
                "are used (`hf-unlearn tune` makes tuned ones; upload them under Method settings).")
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
    tuning, where, name = find_tuning(values)
    if tuning is None:
        return keywords, None
    config_part, own = split_keywords(keywords)
    method, settings, record = tuning.apply(name, own, where)
    return {**config_part, "method": method, **settings}, record


def tuned_for_comparison(values: dict[str, Any], methods: list[str]) -> dict[str, dict[str, Any]]:
    """Each compared method's tuned settings (best trial) when the box is ticked: from the uploaded file (the
    methods it covers) or the store; the rest keep their defaults."""
    from ..methods import NONE, get_method
    from ..tuning import Tuning

    if not values.get("use_tuned"):
        return {}
    if values.get("tuned_file"):  # compare reads only the compared methods' entries
        return {m: dict(t.settings) for m, t in Tuning.load(values["tuned_file"]).methods.items()}
    out = {}
    for name in {get_method(m).name for m in methods} - {NONE}:
        tuning, _, _ = find_tuning(values, name)
        if tuning is not None:
            out[name] = dict(tuning.methods[name].settings)
    return out
