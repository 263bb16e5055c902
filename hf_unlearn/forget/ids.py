"""A list of IDs: the rows whose column holds one of the values a deletion request names (users, sources, files).

A request arrives as "everything from user 8812 and user 9034" or a file of 1,200 file names, not as row
numbers. The IDs may identify people, so the report keeps only how many were asked for and how many matched
no row (:func:`matches`), never the IDs themselves or which of them were absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UnlearnError
from ..fields import doc
from .kind import ForgetKind, KindInput, TrainingSplit
from .matching import column_and_values, match_rows, parse_values, refuse_a_count


@dataclass(frozen=True)
class IdFields:
    id_column: str | None = doc(None, "the column that holds the IDs (a user, a source, a file name)")
    id_values: tuple[str, ...] = doc((), "the IDs whose rows are forgotten")


def check(f: IdFields) -> None:
    refuse_a_count(f.id_values, "IDs", "the IDs")
    if not f.id_column:
        raise UnlearnError("an ID list needs the column that holds the IDs: COLUMN=ID,ID or COLUMN=@FILE")
    if not f.id_values:
        raise UnlearnError(f"the list of '{f.id_column}' IDs is empty: type IDs separated by commas or give a file "
                           "with one per line")


def select(f: IdFields, train: TrainingSplit, _seed: int) -> np.ndarray:
    return match_rows(train.dataset, f.id_column, f.id_values, "ID").rows


def matches(f: IdFields, train: TrainingSplit) -> dict[str, int]:
    """How many distinct IDs were asked for and how many of them no training row holds (counts only)."""
    found = match_rows(train.dataset, f.id_column, f.id_values, "ID")
    return {"requested": found.requested, "unmatched": found.unmatched}


def parse_flag(raw: Any) -> dict[str, Any]:
    """``COLUMN=ID,ID`` or ``COLUMN=@FILE`` (one ID per line, or a JSON list)."""
    if raw is None:
        return {}
    column, values = column_and_values(raw, "--forget-ids", "COLUMN=ID,ID or COLUMN=@FILE")
    return {"id_column": column, "id_values": parse_values(values, "ID")}


def _column(raw: Any) -> dict[str, Any]:
    return {} if raw in (None, "") else {"id_column": str(raw).strip()}


def _typed(raw: Any) -> dict[str, Any]:
    """The app's box: IDs only (a typed ``@path`` is an ID, never a file the server opens)."""
    return {} if raw in (None, "") else {"id_values": parse_values(str(raw), "ID", files=False)}


def _uploaded(path: Any) -> dict[str, Any]:
    return {} if not path else {"id_values": parse_values("@" + str(path), "ID")}


def _describe(f: IdFields, _seed: int) -> str:
    return f"{len(f.id_values)} listed {f.id_column} values"


KIND = ForgetKind(
    name="ids", title="a list of IDs", fields=IdFields, select=select, check=check, describe=_describe,
    record=lambda f: {"id_column": f.id_column, "id_values": len(f.id_values)}, matches=matches,
    inputs=(KindInput("ids", "COLUMN=ID,ID or COLUMN=@FILE (one ID per line, or a JSON list): forget every row "
                      "whose column holds one of the IDs", parse_flag, flag="--forget-ids", widget=None,
                      metavar="COLUMN=IDS"),
            KindInput("id_column", "the column that holds the IDs", _column, widget="columns",
                      label="ids: column"),
            KindInput("id_text", "IDs separated by commas", _typed, label="ids: IDs (comma separated)",
                      widget_args={"placeholder": "8812, 9034"}),
            KindInput("id_file", "a file of IDs (one per line, or a JSON list)", _uploaded, widget="file",
                      label="ids: upload a list (one per line or JSON)")),
)
