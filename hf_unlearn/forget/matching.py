"""Rows whose column holds one of several values: the one matcher the column filter and ID lists share.

Deletion requests arrive as values (user IDs, camera names, file names, fine labels), typed by hand or read
from a file, so the values come as text and are read as the column's type: integers for an integer column,
class names or ids for a ``ClassLabel``, strings otherwise. Which requested values matched no row is kept
only as a count: a list of the people who were *not* in the data is as sensitive as a list of those who were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnlearnError


@dataclass(frozen=True)
class Match:
    """The rows a value list selects, and how many distinct requested values matched none of them."""

    rows: np.ndarray
    requested: int
    unmatched: int


def check_column(dataset: Any, column: str, what: str) -> None:
    if column not in dataset.column_names:
        raise UnlearnError(f"{what} column '{column}' not in the dataset; its columns are: "
                           f"{', '.join(dataset.column_names)}")


def _kind_of(feature: Any, column: str, what: str) -> str:
    """How a column's values are compared: as class ids, integers, booleans or strings; anything else (floats,
    images, lists) is refused, since an ID list is matched exactly and a float's text is not its value."""
    from datasets import ClassLabel, Value

    if isinstance(feature, ClassLabel):
        return "class"
    dtype = getattr(feature, "dtype", None) if isinstance(feature, Value) else None
    if dtype and dtype.startswith(("int", "uint")):
        return "int"
    if dtype == "bool":
        return "bool"
    if dtype in ("string", "large_string"):
        return "string"
    raise UnlearnError(f"{what} column '{column}' holds {dtype or type(feature).__name__} values: values are "
                       "matched exactly, so use a string, integer, boolean or class-label column (cast it first)")


def _typed(values: tuple[Any, ...], feature: Any, kind: str, column: str) -> set[Any]:
    """The requested values as the column stores them. A class label is read as a name first, as
    ``--forget-class`` reads it (star ratings named "1".."5" have ids 0..4), then as an id."""
    out: set[Any] = set()
    for position, v in enumerate(values, 1):
        text = str(v).strip()
        if kind == "class":
            if text in feature.names:
                out.add(feature.str2int(text))
            elif text.isascii() and text.isdigit() and int(text) < feature.num_classes:
                out.add(int(text))
            else:
                out.add(("unknown name", text))  # counted as unmatched, like any value no row holds
        elif kind == "int":
            try:
                out.add(int(text))
            except ValueError:
                raise UnlearnError(f"value {position} of the list is not an integer, and column '{column}' holds "
                                   "integers: check the values (or the column)") from None
        elif kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise UnlearnError(f"value {position} of the list is not true/false, and column '{column}' holds "
                                   "booleans")
            out.add(text.lower() in ("true", "1"))
        else:
            out.add(text)
    return out


def match_rows(dataset: Any, column: str, values: tuple[Any, ...], what: str) -> Match:
    """Training rows whose ``column`` holds one of ``values``; the count of values that matched no row."""
    check_column(dataset, column, what)
    feature = dataset.features[column]
    wanted = _typed(tuple(values), feature, _kind_of(feature, column, what), column)
    stored = dataset.select_columns([column])[:][column]  # one list (iterating the lazy column formats each row)
    rows = np.fromiter((i for i, v in enumerate(stored) if v in wanted), dtype=np.int64)
    present = wanted.intersection(stored)
    return Match(rows, len(wanted), len(wanted) - len(present))


def read_list_file(path: Path, what: str) -> list[str]:
    """The items of a list file: a JSON list, or one per line; one line of error for a missing or binary file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnlearnError(f"cannot read the {what} file '{path}': {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Excel, Notepad) is not part of the first value
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise UnlearnError(f"'{path}' is not a text file: give one {what} per line (UTF-8 text) or a JSON list")
    if not text.lstrip().startswith("["):
        return text.splitlines()
    try:
        items = json.loads(text)
    except ValueError:
        raise UnlearnError(f"'{path}' starts like a JSON list but is not one") from None
    if not isinstance(items, list) or any(isinstance(v, (list, dict)) for v in items):
        raise UnlearnError(f"'{path}' must be a flat JSON list of {what}s")
    return [str(v) for v in items]


def parse_values(text: str, what: str, files: bool = True) -> tuple[str, ...]:
    """Values separated by commas, or ``@FILE``: one per line (or a JSON list); duplicates kept once, in order.

    ``files=False`` (a box in the app): the text is values only; a server never opens a path a visitor types."""
    values = read_list_file(Path(text[1:]), what) if files and text.startswith("@") else text.split(",")
    return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))


def column_and_values(raw: str, flag: str, form: str) -> tuple[str, str]:
    """``COLUMN=VALUES`` of a CLI flag (``--forget-filter``, ``--forget-ids``) split at the first ``=``."""
    if "=" not in raw:
        raise UnlearnError(f"{flag} expects {form}, got '{raw}'")
    column, values = raw.split("=", 1)
    return column.strip(), values.strip()


def refuse_a_count(value: Any, listed: str, again: str) -> None:
    """A report keeps only how many rows or IDs a request listed: a request rebuilt from it cannot run."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise UnlearnError(f"this record keeps only how many {listed} were listed ({value}), not which: give "
                           f"{again} again")
