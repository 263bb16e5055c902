"""``ForgetSpec``: a kind's name and that kind's fields, as a plain, serialisable value; and selecting its rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import fields as F
from ..errors import UnlearnError
from .kind import ForgetKind, TrainingSplit, all_kinds, get_kind, kinds_phrase

#: fields every request has, whatever its kind
COMMON = ("seed", "retain_fraction")
ONE_KIND = "give exactly one forget specification: {}"


@dataclass(frozen=True, init=False)
class ForgetSpec:
    """What the model must forget; the retain set is always the complement.

    ``ForgetSpec("class", classes=("cat",))`` names the kind; without it the
    kind is the one whose fields are given (``ForgetSpec(classes=("cat",))``,
    ``ForgetSpec(fraction=0.1, stratified=True)``), exactly one kind per
    request. Each kind's fields are read as attributes (``spec.classes``).
    ``seed`` seeds the kind's draws and the retain subsample;
    ``retain_fraction`` < 1 hands methods a seeded subsample of the retain set
    (MinNorm-OG works from one); metrics always use the whole retain set.
    """

    kind: str
    fields: Any
    seed: int = F.doc(0, "seed of the forget kind's random draws and of the retain subsample", keyword="forget_seed",
                      app="forget", label="forget seed")
    retain_fraction: float = F.doc(1.0, "share of D_r the method trains on (a seeded subsample; metrics use all)",
                                   app="run", label="retain fraction",
                                   widget={"type": "slider", "minimum": 0.05, "maximum": 1.0, "step": 0.05})

    def __init__(self, kind: str | None = None, *, seed: int = 0, retain_fraction: float = 1.0,
                 fields: Any = None, **kind_fields: Any) -> None:
        if kind is not None and not isinstance(kind, str):
            raise UnlearnError(f"ForgetSpec's first argument is the kind's name ({kinds_list()}), got {kind!r}: "
                               "give the kind's fields by name, e.g. ForgetSpec(classes=('cat',))")
        if fields is not None:  # dataclasses.replace() hands the fields back whole
            kind_fields = {**dataclasses.asdict(fields), **kind_fields}
        kind_fields = {k: _plain(v) for k, v in kind_fields.items()}
        the_kind = get_kind(kind) if kind is not None else _infer_kind(kind_fields)
        own = set(the_kind.field_names())
        foreign = {k for k in kind_fields if k not in own}
        if foreign and not any(_given(kind_fields[k]) for k in foreign):
            kind_fields = {k: v for k, v in kind_fields.items() if k in own}  # other kinds' fields left at defaults
        values = F.build(the_kind.fields, kind_fields, f"the '{the_kind.name}' forget kind")
        the_kind.check(values)
        if not 0.0 < retain_fraction <= 1.0:
            raise UnlearnError(f"retain_fraction must be in (0, 1], got {retain_fraction}")
        object.__setattr__(self, "kind", the_kind.name)
        object.__setattr__(self, "fields", values)
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "retain_fraction", float(retain_fraction))

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("fields")
        if values is not None and name in {f.name for f in dataclasses.fields(values)}:
            return getattr(values, name)
        raise AttributeError(f"a '{self.__dict__.get('kind')}' forget request has no field '{name}'")

    @property
    def the_kind(self) -> ForgetKind:
        return get_kind(self.kind)

    def describe(self) -> str:
        """A short human phrase for logs and model cards (never the rows themselves)."""
        return self.the_kind.describe(self.fields, self.seed)

    def to_dict(self) -> dict[str, Any]:
        """The kind, what the report may keep of its fields (listed rows only as a count), and the common fields."""
        return {"kind": self.kind, **self.the_kind.record(self.fields), "seed": self.seed,
                "retain_fraction": self.retain_fraction}

    @classmethod
    def ids(cls, column: str, values: Any, *, seed: int = 0, retain_fraction: float = 1.0) -> ForgetSpec:
        """Every training row whose ``column`` holds one of ``values`` (user IDs, sources, file names): a
        deletion request as it arrives. Integer columns take integers, ``ClassLabel`` columns names or ids."""
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise UnlearnError(f"ForgetSpec.ids takes a list of values, got {type(values).__name__}: wrap one ID "
                               "in a list")
        return cls("ids", id_column=column, id_values=tuple(dict.fromkeys(str(v) for v in values)), seed=seed,
                   retain_fraction=retain_fraction)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ForgetSpec:
        """The request a report (or a settings file) recorded; extra keys (its description, sizes) are ignored."""
        kind = get_kind(str(record.get("kind")))
        names = kind.field_names()
        return cls(kind.name, seed=record.get("seed", 0), retain_fraction=record.get("retain_fraction", 1.0),
                   **{k: v for k, v in record.items() if k in names})


def _plain(value: Any) -> Any:
    """Sequences (lists, numpy arrays) as tuples: a request is a hashable value."""
    if isinstance(value, (str, bytes, tuple)) or not hasattr(value, "__len__") or isinstance(value, Mapping):
        return value
    return tuple(value.tolist() if hasattr(value, "tolist") else value)


def _given(value: Any) -> bool:
    """Whether a field was given: None, False and empty sequences are what every field defaults to."""
    return value is not None and value is not False and not (hasattr(value, "__len__") and len(value) == 0)


def kinds_list() -> str:
    return ", ".join(f"'{k.name}'" for k in all_kinds())


def _infer_kind(kind_fields: Mapping[str, Any]) -> ForgetKind:
    """The one kind whose fields were given (a field left at its default does not count as given)."""
    given = {k for k, v in kind_fields.items() if _given(v)}
    matches = [k for k in all_kinds() if given and given <= set(k.field_names())]
    unknown = set(kind_fields) - {n for k in all_kinds() for n in k.field_names()}
    if unknown:
        raise UnlearnError(f"'{sorted(unknown)[0]}' is not a field of any forget kind; "
                           + ONE_KIND.format(kinds_phrase()))
    if len(matches) != 1:
        raise UnlearnError(ONE_KIND.format(kinds_phrase()))
    return matches[0]


def form_name(input_name: str) -> str:
    """The name a kind's input has in the CLI's arguments and the app's API (``forget_<input>``)."""
    return f"forget_{input_name}"


def common_inputs() -> tuple[F.Input, ...]:
    """The inputs of the fields every request has (``forget_seed``, ``retain_fraction``), for the CLI and the app."""
    return F.field_inputs(ForgetSpec, only=COMMON, value_key=lambda f: f.name)


def spec_from_form(values: Mapping[str, Any], kind: str | None = None) -> ForgetSpec:
    """The request a CLI or app form describes: ``kind`` chosen (the app), or the one kind given (the CLI).

    ``values`` maps form names (:func:`form_name`, and the common fields' keywords ``forget_seed`` and
    ``retain_fraction``) to raw values; an input left empty is ``None``.
    """
    common = {k: v for inp in common_inputs() for k, v in inp.parse(values.get(inp.name)).items()}
    if kind is None:
        given = [k for k in all_kinds() if any(values.get(form_name(i.name)) is not None for i in k.all_inputs())]
        if len(given) != 1:
            raise UnlearnError(ONE_KIND.format(kinds_phrase()))
        the_kind = given[0]
    else:
        the_kind = get_kind(kind)
    kind_fields: dict[str, Any] = {}
    for inp in the_kind.all_inputs():
        kind_fields.update(inp.parse(values.get(form_name(inp.name))))
    return ForgetSpec(the_kind.name, **common, **kind_fields)


def select_forget(spec: ForgetSpec, train: TrainingSplit) -> np.ndarray:
    """Sorted training-row indices of the forget set ``D_f``; it must be a non-empty proper subset of ``D``."""
    rows = np.sort(np.asarray(spec.the_kind.select(spec.fields, train, spec.seed)).astype(np.int64))
    if len(rows) == 0:
        raise UnlearnError(
            f"the forget set is empty ({spec.describe()} selects no training row): check the specification")
    if len(rows) >= len(train):
        raise UnlearnError(
            f"the forget set is the whole training split ({spec.describe()}): nothing would be retained; forget less")
    return rows
