"""A column filter: the rows where a column equals a value (metadata, or a fine label inside a coarse one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UnlearnError
from ..fields import doc
from .kind import ForgetKind, KindInput, TrainingSplit


@dataclass(frozen=True)
class FilterFields:
    filter_column: str | None = doc(None, "the column to match")
    filter_value: Any = doc(None, "the value whose rows are forgotten (a ClassLabel column also takes the name)")


def check(f: FilterFields) -> None:
    if not f.filter_column or f.filter_value in (None, ""):
        raise UnlearnError(f"the column filter{f' on {f.filter_column!r}' if f.filter_column else ''} needs both "
                           "a column and a value (column=value)")


def select(f: FilterFields, train: TrainingSplit, _seed: int) -> np.ndarray:
    from datasets import ClassLabel

    ds, column, value = train.dataset, f.filter_column, f.filter_value
    if column not in ds.column_names:
        raise UnlearnError(
            f"filter column '{column}' not in the dataset; its columns are: {', '.join(ds.column_names)}")
    feat = ds.features[column]
    if isinstance(feat, ClassLabel) and isinstance(value, str) and not value.isdigit():
        if value not in feat.names:
            raise UnlearnError(f"'{value}' is not a value of '{column}'; valid: {', '.join(feat.names)}")
        value = feat.str2int(value)
    target = str(value)
    return np.asarray([i for i, v in enumerate(ds[column]) if str(v) == target], dtype=np.int64)


def parse_column_value(raw: Any) -> dict[str, Any]:
    """'COLUMN=VALUE' (the CLI's one flag for both fields)."""
    if raw is None:
        return {}
    if "=" not in raw:
        raise UnlearnError(f"--forget-filter expects COLUMN=VALUE, got '{raw}'")
    column, value = raw.split("=", 1)
    return {"filter_column": column.strip(), "filter_value": value.strip()}


def _text(field_name: str):
    return lambda raw: {} if raw in (None, "") else {field_name: str(raw).strip()}


KIND = ForgetKind(
    name="filter", title="a column filter", fields=FilterFields, select=select, check=check,
    describe=lambda f, _seed: f"rows where {f.filter_column} == {f.filter_value!r}",
    inputs=(KindInput("filter", "COLUMN=VALUE: forget rows where the column equals the value", parse_column_value,
                      flag="--forget-filter", widget=None, metavar="COLUMN=VALUE"),
            KindInput("filter_column", "the column to match", _text("filter_column"), label="filter: column"),
            KindInput("filter_value", "the value to forget", _text("filter_value"), label="filter: value")),
)
