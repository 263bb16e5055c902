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
    """Which test rows TA is measured on, which are reported apart, and which classes (if any) are forgotten.

    ``forget_rows``: test rows that belong to the forgotten part of the distribution (a forgotten class's);
    their accuracy is reported apart ("forget-class test acc") and should fall as Retrain's does.
    """

    rows: np.ndarray
    forget_rows: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    forget_class_ids: list[int] = field(default_factory=list)


#: one input of a kind: a CLI flag and/or an app control (the same type the run configuration's fields use)
KindInput = F.Input


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
    #: the ``index``-th proxy request of the same kind and size, disjoint from the real one, as (kind name,
    #: fields) (:mod:`hf_unlearn.proxies`); ``None``: a seeded random draw of as many other rows
    proxy: Callable[[Any, TrainingSplit, np.ndarray, int, int], tuple[str, dict[str, Any]]] | None = None
    #: counts of what a value-list request asked for and what of it the dataset lacks ({"requested",
    #: "unmatched"}), for the report and the app; never the values
    matches: Callable[[Any, TrainingSplit], dict[str, int]] | None = None

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.fields))

    def all_inputs(self) -> tuple[KindInput, ...]:
        return self.inputs if self.inputs is not None else generated_inputs(self)


def generated_inputs(kind: ForgetKind) -> tuple[KindInput, ...]:
    """One input per field: flag ``--forget-<field>`` (or the field's ``flag``), a control by the field's type.

    A field's ``widget`` documentation may name the control (``{"type": "slider", "minimum": ...}``), or
    ``{"type": None}`` for a CLI-only field.
    """
    return F.field_inputs(kind.fields, key=lambda f: f.name,
                          flag=lambda f: F.meta(f, "flag") or "--forget-" + f.name.replace("_", "-"),
                          label=lambda f: F.meta(f, "label") or f"{kind.name}: {f.name.replace('_', ' ')}",
                          what=f"{kind.name}: ")


#: names a kind's field may not have: ForgetSpec's own
RESERVED_FIELDS = ("kind", "fields", "seed", "retain_fraction")
#: form names a kind's input may not take: the form's own (the kind choice, the common fields)
RESERVED_INPUTS = ("kind", "seed")


_KINDS: Registry[ForgetKind] = Registry("forget kind", lambda k: k.name)


def register_kind(kind: ForgetKind) -> ForgetKind:
    """Add a kind. Its fields and inputs must be its own: input names become CLI destinations and app
    parameter names, flags must not collide, and a field another kind has would make ``ForgetSpec(field=...)``
    ambiguous."""
    others = [k for k in _KINDS.items() if k.name != kind.name]
    mine = kind.all_inputs()
    problems = {
        "input names": {i.name for i in mine} & ({i.name for k in others for i in k.all_inputs()}
                                                 | set(RESERVED_INPUTS)),
        "flags": {i.flag for i in mine if i.flag} & {i.flag for k in others for i in k.all_inputs() if i.flag},
        "field names": set(kind.field_names()) & ({n for k in others for n in k.field_names()}
                                                  | set(RESERVED_FIELDS)),
    }
    for what, clash in problems.items():
        if clash:
            raise ValueError(f"forget kind '{kind.name}': {what} {sorted(clash)} are taken by another kind or "
                             "by ForgetSpec itself")
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
    """'classes, a random fraction/count, row indices, or a column filter' (for the one-kind error)."""
    titles = [k.title for k in _KINDS.items()]
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + ", or " + titles[-1]
