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


def _native(feature: Any) -> bool:
    """Whether the column's values are compared as stored (class ids, integers, strings), else as text."""
    from datasets import ClassLabel, Value

    return isinstance(feature, ClassLabel) or (
        isinstance(feature, Value) and feature.dtype.startswith(("int", "uint", "string", "large_string")))


def _typed(values: tuple[Any, ...], feature: Any, column: str) -> set[Any]:
    """The requested values as the column stores them (a ``ClassLabel``'s names as their ids)."""
    from datasets import ClassLabel, Value

    if isinstance(feature, ClassLabel):
        out = set()
        for v in values:
            text = str(v)
            if text.isdigit():
                out.add(int(text))
            elif text in feature.names:
                out.add(feature.str2int(text))
            else:
                out.add(("unknown name", text))  # counted as unmatched, like any value no row holds
        return out
    if isinstance(feature, Value) and feature.dtype.startswith(("int", "uint")):
        try:
            return {int(str(v).strip()) for v in values}
        except ValueError:
            bad = next(v for v in values if not str(v).strip().lstrip("-").isdigit())
            raise UnlearnError(f"'{bad}' is not an integer, and column '{column}' holds integers: check the "
                               "values (or the column)") from None
    return {str(v) for v in values}  # strings, and any other type compared as text


def match_rows(dataset: Any, column: str, values: tuple[Any, ...], what: str) -> Match:
    """Training rows whose ``column`` holds one of ``values``; the count of values that matched no row."""
    check_column(dataset, column, what)
    feature = dataset.features[column]
    wanted = _typed(tuple(values), feature, column)
    stored = dataset.select_columns([column])[:][column]  # one list (iterating the lazy column formats each row)
    if not _native(feature):
        stored = [str(v) for v in stored]
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
        text = raw.decode("utf-8")
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


def parse_values(text: str, what: str) -> tuple[str, ...]:
    """Values separated by commas, or ``@FILE``: one per line (or a JSON list); duplicates kept once, in order."""
    values = read_list_file(Path(text[1:]), what) if text.startswith("@") else text.split(",")
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
