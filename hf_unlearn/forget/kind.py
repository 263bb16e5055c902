"""What a forget kind is, and the registry of kinds.

A kind (class-wise, random, listed rows, a column filter, ...) is one module
that declares a :class:`ForgetKind`: its fields (a frozen dataclass declared
with :func:`hf_unlearn.fields.doc`), their validation with one-line errors,
a short description, how it selects training rows, its test-split rule, and
the inputs (CLI flags and app controls) that fill its fields. The CLI, the
app and :class:`~hf_unlearn.forget.spec.ForgetSpec` are generated from the
registered kinds, so registering one (:func:`register_kind`) is the whole of
adding one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import fields as F
from ..registry import Registry


@dataclass(frozen=True)
class TrainingSplit:
    """The training split as a kind sees it when it selects rows: the dataset (for its columns) and the labels."""

    dataset: Any
    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return int(len(self.labels))


@dataclass(frozen=True)
class TestRule:
    """Which test rows TA is measured on, and which classes (if any) the request forgets."""

    rows: np.ndarray
    forget_class_ids: list[int] = field(default_factory=list)


#: app controls a kind's input may ask for (the app maps each to a Gradio component)
WIDGETS = ("text", "number", "checkbox", "slider", "classes", "file")


@dataclass(frozen=True)
class KindInput:
    """One thing a user types or picks: a CLI flag and/or an app control, filling one or more of a kind's fields.

    ``parse`` turns the raw value (a CLI string, an app value) into the fields it gives, ``{}`` when the
    input was left empty. ``flag=None``: app only; ``widget=None``: CLI only.
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

    @property
    def is_switch(self) -> bool:
        """A CLI flag without a value (``--stratified``)."""
        return self.widget == "checkbox"


def _no_check(_fields: Any) -> None:
    return None


def whole_test_split(_fields: Any, test_labels: np.ndarray, _class_names: list[str]) -> TestRule:
    """The default test rule: TA on every test row."""
    return TestRule(np.arange(len(test_labels)))


@dataclass(frozen=True)
class ForgetKind:
    """A registered kind of forget request."""

    name: str
    #: a short phrase for lists of kinds ("classes", "a column filter")
    title: str
    fields: type
    select: Callable[[Any, TrainingSplit, int], np.ndarray]
    #: a short phrase from the fields and the request's seed ("random 10.0% (seed 0)")
    describe: Callable[[Any, int], str]
    check: Callable[[Any], None] = _no_check
    test_split: Callable[[Any, np.ndarray, list[str]], TestRule] = whole_test_split
    #: what the report keeps of the fields (never anything that identifies rows beyond a count)
    record: Callable[[Any], dict[str, Any]] = dataclasses.asdict
    #: the user-facing inputs; ``None``: one per field, generated from the fields' documentation
    inputs: tuple[KindInput, ...] | None = None
    test_rule: str = "the whole test split"

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.fields))

    def all_inputs(self) -> tuple[KindInput, ...]:
        return self.inputs if self.inputs is not None else generated_inputs(self)


def generated_inputs(kind: ForgetKind) -> tuple[KindInput, ...]:
    """One input per field: flag ``--forget-<field>`` (or the field's ``flag``), a control by the field's type.

    A field's ``widget`` documentation may name the control (``{"type": "slider", "minimum": ...}``), or
    ``{"type": None}`` for a CLI-only field.
    """
    hints = F.field_types(kind.fields)
    out = []
    for f in dataclasses.fields(kind.fields):
        typ = F.base_type(hints[f.name])
        args = dict(F.meta(f, "widget") or {})
        widget = args.pop("type", "checkbox" if typ is bool else "number" if typ in (int, float) else "text")
        if widget in ("number", "checkbox", "slider") and F.default_of(f) is not None:
            args.setdefault("value", F.default_of(f))  # the app starts from the field's default
        out.append(KindInput(
            name=f.name, help=F.meta(f, "help") or "", flag=F.meta(f, "flag") or "--forget-" + f.name.replace("_", "-"),
            widget=widget, widget_args=args, label=F.meta(f, "label") or f"{kind.name}: {f.name.replace('_', ' ')}",
            parse=_field_parser(f, typ, kind.name)))
    return tuple(out)


def _field_parser(f: dataclasses.Field, typ: Any, kind: str) -> Callable[[Any], dict[str, Any]]:
    custom = F.meta(f, "parse")

    def parse(raw: Any) -> dict[str, Any]:
        if raw is None or raw == "" or raw is False:
            return {}
        if isinstance(raw, str) and custom is not None:
            return {f.name: custom(raw)}
        if typ is int and isinstance(raw, float) and raw.is_integer():
            raw = int(raw)  # the app's number boxes hand back floats
        return {f.name: F.coerce(raw, typ, f"{kind}: {f.name}")}

    return parse


_KINDS: Registry[ForgetKind] = Registry("forget kind", lambda k: k.name)


def register_kind(kind: ForgetKind) -> ForgetKind:
    """Add a kind. Its input names must be new: they become CLI destinations and app parameter names."""
    taken = {i.name for k in _KINDS.items() if k.name != kind.name for i in k.all_inputs()}
    clash = taken & {i.name for i in kind.all_inputs()}
    if clash:
        raise ValueError(f"forget kind '{kind.name}': input names {sorted(clash)} are used by another kind")
    return _KINDS.register(kind)


def unregister_kind(name: str) -> None:
    _KINDS.unregister(name)


def available_kinds() -> list[str]:
    return _KINDS.names()


def all_kinds() -> list[ForgetKind]:
    return _KINDS.items()


def get_kind(name: str) -> ForgetKind:
    return _KINDS.get(name)


def kinds_phrase() -> str:
    """'classes, a random fraction/count, row indices or a column filter' (for the one-kind error)."""
    titles = [k.title for k in _KINDS.items()]
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " or " + titles[-1]
