"""Documented dataclass fields: one declaration gives a setting its default, meaning, CLI flag and app control.

Method settings, the run configuration (model, data, options) and the forget
kinds are all dataclasses declared with :func:`doc`. The CLI's flags, the
app's inputs, ``hf-unlearn methods -v`` and the reports are generated from
those declarations, so a setting is described in exactly one place, and a
string typed into a terminal or a text box is converted and checked by one
function (:func:`coerce`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field
from typing import Any

from .errors import UnlearnError


def doc(default: Any = MISSING, help: str = "", *, flag: str | None = None, choices: tuple[Any, ...] | None = None,  # noqa: A002
        keyword: str | None = None, app: str | None = None, label: str | None = None,
        parse: Callable[[str], Any] | None = None, widget: dict[str, Any] | None = None,
        search: Any = None) -> Any:
    """A dataclass field with its meaning and its user-facing forms attached.

    ``keyword``: its name in the flat keyword API (``unlearn(dataset_config=...)``) when that differs from the
    field's own; ``flag``: its CLI flag (default ``--`` + the keyword with dashes); ``choices``: the values it
    accepts; ``app``: the app panel that shows it (``None``: not in the app); ``label``: the app's label;
    ``parse``: how a string becomes its value (default :func:`coerce` by type); ``widget``: extra arguments
    of its app control (a slider's range, say); ``search``: the range a tuner may try
    (:mod:`hf_unlearn.search`; ``None``: the setting is not tuned).
    """
    meta = {"help": help, "flag": flag, "choices": choices, "keyword": keyword, "app": app, "label": label,
            "parse": parse, "widget": widget or {}, "search": search}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def meta(f: Field, key: str) -> Any:
    """One piece of a field's documentation (``None`` for a field declared without :func:`doc`)."""
    return f.metadata.get(key)


def keyword_of(f: Field) -> str:
    return meta(f, "keyword") or f.name


def flag_of(f: Field) -> str:
    return meta(f, "flag") or "--" + keyword_of(f).replace("_", "-")


def default_of(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field (annotations are strings under ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def base_type(t: Any) -> Any:
    """``int`` for ``int | None``; the element type's container for ``tuple[int, ...]`` stays a tuple."""
    if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return base_type(args[0]) if len(args) == 1 else t
    return t


def type_name(t: Any) -> str:
    t = base_type(t)
    return getattr(t, "__name__", str(t))


def coerce(value: Any, typ: Any, what: str) -> Any:
    """A CLI or app string as a value of ``typ``; a one-line error naming ``what`` when it is not one.

    Non-strings pass through (an int where a float is wanted becomes a float),
    so a value given from Python keeps its type.
    """
    typ = base_type(typ)
    if not isinstance(value, str):
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if typ is int and isinstance(value, float):
            if not value.is_integer():
                raise UnlearnError(f"{what} must be an int, got {value}")
            return int(value)  # an app's number box hands back 2.0 for 2
        return value
    try:
        if typ is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is int:
            return int(value)
        if typ is float:
            return float(value)
    except ValueError:
        name = type_name(typ)
        raise UnlearnError(f"{what} must be {'an' if name[0] in 'aeiou' else 'a'} {name}, got '{value}'") from None
    return value


def describe(cls: type) -> list[dict[str, Any]]:
    """Name, default, type and meaning of every field (``hf-unlearn methods -v``, the app's settings table)."""
    hints = field_types(cls)
    return [{"name": f.name, "default": default_of(f), "type": type_name(hints[f.name]), "help": meta(f, "help") or ""}
            for f in dataclasses.fields(cls)]


def build(cls: type, overrides: dict[str, Any] | None, owner: str) -> Any:
    """``cls`` with ``overrides`` applied, strings converted by field type; unknown names are one-line errors.

    ``owner`` names what the settings belong to ("method 'ft'") in the messages.
    """
    overrides = dict(overrides or {})
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise UnlearnError(f"unknown setting '{unknown[0]}' for {owner}; its settings are: {', '.join(known)}")
    hints = field_types(cls)
    values = {k: _parsed(known[k], v, hints[k], f"setting '{k}' of {owner}") for k, v in overrides.items()}
    return cls(**values)


def _parsed(f: Field, value: Any, typ: Any, what: str) -> Any:
    parse = meta(f, "parse")
    if parse is not None and isinstance(value, str):
        return parse(value)
    return coerce(value, typ, what)


def check_choice(value: Any, f: Field, what: str) -> None:
    """A one-line error when a field declared with ``choices`` holds another value."""
    choices = meta(f, "choices")
    if choices and value not in choices:
        raise UnlearnError(f"{what} must be one of {', '.join(map(str, choices))}; got '{value}'")


#: app controls an input may ask for (the app maps each to a Gradio component)
WIDGETS = ("text", "number", "checkbox", "slider", "choice", "classes", "columns", "file", "preset", "method")


@dataclass(frozen=True)
class Input:
    """One thing a user types or picks: a CLI flag and/or an app control, filling one or more fields.

    ``parse`` turns the raw value (a CLI string, an app value) into the field values it gives, ``{}`` when
    the input was left empty. ``flag=None``: app only; ``widget=None``: CLI only. The CLI and the app
    both build from these, so a field's flag and its control cannot disagree.
    """

    name: str
    help: str
    parse: Callable[[Any], dict[str, Any]]
    flag: str | None = None
    widget: str | None = "text"
    label: str = ""
    widget_args: dict[str, Any] = field(default_factory=dict)
    repeat: bool = False
    metavar: str | None = None
    #: the field's default: what the CLI's help names, a switch's direction, the app control's first value
    default: Any = None
    choices: tuple[Any, ...] | None = None
    required: bool = False

    def __post_init__(self) -> None:
        if self.widget is not None and self.widget not in WIDGETS:
            raise ValueError(f"input '{self.name}': widget must be one of {WIDGETS}, got '{self.widget}'")

    @property
    def is_switch(self) -> bool:
        """A CLI flag without a value (``--stratified``, ``--no-cuda-graphs``)."""
        return self.widget == "checkbox"


def field_inputs(cls: type, *, only: tuple[str, ...] | None = None, key: Callable[[Field], str] = keyword_of,
                 value_key: Callable[[Field], str] | None = None, flag: Callable[[Field], str] = flag_of,
                 label: Callable[[Field], str] | None = None, what: str = "") -> tuple[Input, ...]:
    """One input per documented field of ``cls`` (or of ``only`` those): flag, control, default and parser from
    the field's declaration. ``key`` names both the input and the value its parser gives (the flat keyword
    for the run configuration, the field's own name for a forget kind) unless ``value_key`` names the value
    apart; ``what`` prefixes the field's name in error messages ("every-kth: every must be an int")."""
    hints = field_types(cls)
    out = []
    for f in dataclasses.fields(cls):
        if (only is not None and f.name not in only) or not meta(f, "help"):
            continue
        typ, default, choices = base_type(hints[f.name]), default_of(f), meta(f, "choices")
        args = dict(meta(f, "widget") or {})
        widget = args.pop("type", "choice" if choices else "checkbox" if typ is bool
                          else "number" if typ in (int, float) else "text")
        if widget == "number" and typ is int:
            args.setdefault("precision", 0)
        named = f"{what}{f.name}" if what else key(f)
        out.append(Input(
            name=key(f), help=meta(f, "help"), parse=_value_parser(f, typ, (value_key or key)(f), named), flag=flag(f),
            widget=widget, label=label(f) if label else (meta(f, "label") or key(f)), widget_args=args,
            metavar="{" + ",".join(map(str, choices)) + "}" if choices else None,
            default=None if default is MISSING else default, choices=choices, required=default is MISSING))
    return tuple(out)


def parse_inputs(inputs: tuple[Input, ...], values: dict[str, Any], name: Callable[[Input], str] | None = None
                 ) -> dict[str, Any]:
    """The field values a filled-in form or a command line means: each input's ``parse`` of its raw value
    (``values`` keyed by ``name(input)``, default the input's name; inputs left empty give nothing)."""
    out: dict[str, Any] = {}
    for inp in inputs:
        out.update(inp.parse(values.get(name(inp) if name else inp.name)))
    return out


def _value_parser(f: Field, typ: Any, out_key: str, what: str) -> Callable[[Any], dict[str, Any]]:
    def parse(raw: Any) -> dict[str, Any]:
        if raw is None or raw == "":
            return {}
        return {out_key: _parsed(f, raw, typ, what)}

    return parse


__all__ = ["Input", "WIDGETS", "build", "check_choice", "coerce", "default_of", "describe", "doc", "field_inputs",
           "field_types", "flag_of", "parse_inputs",
           "keyword_of", "meta", "type_name"]
