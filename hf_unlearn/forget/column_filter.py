"""A column filter: the rows where a column equals a value, or one of several (metadata, or fine labels inside a
coarse one: "every fine label in this list" is sub-class forgetting)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UnlearnError
from ..fields import doc
from .kind import ForgetKind, KindInput, TrainingSplit
from .matching import check_column, column_and_values, match_rows


@dataclass(frozen=True)
class FilterFields:
    filter_column: str | None = doc(None, "the column to match")
    filter_value: Any = doc(None, "the value whose rows are forgotten, or a tuple of values (a ClassLabel column "
                            "also takes names)")


def _values(f: FilterFields) -> tuple[Any, ...]:
    return tuple(f.filter_value) if isinstance(f.filter_value, (tuple, list)) else (f.filter_value,)


def check(f: FilterFields) -> None:
    if not f.filter_column or not [v for v in _values(f) if v not in (None, "")]:
        raise UnlearnError(f"the column filter{f' on {f.filter_column!r}' if f.filter_column else ''} needs both "
                           "a column and a value (column=value)")


def select(f: FilterFields, train: TrainingSplit, _seed: int) -> np.ndarray:
    from datasets import ClassLabel

    ds, column = train.dataset, f.filter_column
    check_column(ds, column, "filter")
    feat = ds.features[column]
    if isinstance(feat, ClassLabel):  # a filter's values are public labels: a name that is none is a typo
        unknown = [v for v in _values(f) if not str(v).isdigit() and str(v) not in feat.names]
        if unknown:
            raise UnlearnError(f"'{unknown[0]}' is not a value of '{column}'; valid: {', '.join(feat.names)}")
    found = match_rows(ds, column, _values(f), "filter")
    if 0 < found.unmatched < found.requested:  # none matching is "the forget set is empty"
        raise UnlearnError(f"{found.unmatched} of the {found.requested} filter values match no row of '{column}': "
                           "check their spelling (values are separated by commas)")
    return found.rows


def _describe(f: FilterFields, _seed: int) -> str:
    values = _values(f)
    if len(values) == 1:
        return f"rows where {f.filter_column} == {values[0]!r}"
    return f"rows where {f.filter_column} is one of {len(values)} values ({', '.join(map(repr, values[:3]))}" + \
        (", …)" if len(values) > 3 else ")")


def parse_column_value(raw: Any) -> dict[str, Any]:
    """'COLUMN=VALUE' (the CLI's one flag for both fields)."""
    if raw is None:
        return {}
    column, value = column_and_values(raw, "--forget-filter", "COLUMN=VALUE")
    values = tuple(v.strip() for v in value.split(",") if v.strip())
    return {"filter_column": column, "filter_value": values[0] if len(values) == 1 else values}


def _typed_values(raw: Any) -> dict[str, Any]:
    """The app's value box: one value, or several separated by commas."""
    if raw in (None, ""):
        return {}
    return {"filter_value": parse_column_value(f"_={raw}")["filter_value"]}


def _text(field_name: str):
    return lambda raw: {} if raw in (None, "") else {field_name: str(raw).strip()}


KIND = ForgetKind(
    name="filter", title="a column filter", fields=FilterFields, select=select, check=check,
    describe=_describe,
    inputs=(KindInput("filter", "COLUMN=VALUE[,VALUE...]: forget rows where the column holds one of the values",
                      parse_column_value, flag="--forget-filter", widget=None, metavar="COLUMN=VALUE"),
            KindInput("filter_column", "the column to match", _text("filter_column"), label="filter: column"),
            KindInput("filter_value", "the value to forget, or several separated by commas", _typed_values,
                      label="filter: value(s)")),
)
