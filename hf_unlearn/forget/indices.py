"""Listed rows: explicit row indices of the training split (typed, or a file of one per line / a JSON list).

The report keeps only how many rows were listed, never the rows (they may identify people).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnlearnError
from ..fields import doc
from .kind import ForgetKind, KindInput, TrainingSplit
from .matching import read_list_file, refuse_a_count


def parse_indices(text: str, files: bool = True) -> tuple[int, ...]:
    """Comma/space separated indices, or @FILE with one index per line (or a JSON list); ``files=False`` (the
    app's box): numbers only, a typed ``@path`` is never opened."""
    if files and text.startswith("@"):
        text = " ".join(read_list_file(Path(text[1:]), "index"))
    values = [v for v in text.replace(",", " ").split() if v]
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        bad = next(v for v in values if not v.lstrip("-").isdigit())
        raise UnlearnError(f"forget index '{bad}' is not an integer row number") from None


@dataclass(frozen=True)
class IndexFields:
    indices: tuple[int, ...] = doc((), "row indices of the training split", parse=parse_indices)


def check(f: IndexFields) -> None:
    refuse_a_count(f.indices, "rows", "the row indices")
    if not f.indices:
        raise UnlearnError("the index list is empty: upload a file or type row numbers (e.g. 3, 17, 42)")


def select(f: IndexFields, train: TrainingSplit, _seed: int) -> np.ndarray:
    n = len(train)
    idx = np.asarray(f.indices, dtype=np.int64)
    bad = idx[(idx < 0) | (idx >= n)]
    if len(bad):
        raise UnlearnError(f"forget index {int(bad[0])} is out of range: the training split has rows 0..{n - 1}")
    uniq, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise UnlearnError(f"forget index {int(uniq[counts > 1][0])} is listed twice: list each row once")
    return uniq


def _flag(raw: Any) -> dict[str, Any]:
    return {} if raw is None else {"indices": parse_indices(str(raw))}


def _typed(raw: Any) -> dict[str, Any]:
    return {} if raw is None else {"indices": parse_indices(str(raw), files=False)}


def _uploaded(path: Any) -> dict[str, Any]:
    return {} if not path else {"indices": parse_indices("@" + str(path))}


KIND = ForgetKind(
    name="indices", title="row indices", fields=IndexFields, select=select, check=check,
    describe=lambda f, _seed: f"{len(f.indices)} listed rows",
    record=lambda f: {"indices": len(f.indices)},
    inputs=(KindInput("indices_flag", "row indices: '1,5,9' or @FILE (one per line, or a JSON list)", _flag,
                      flag="--forget-indices", widget=None, metavar="INDICES"),
            KindInput("indices", "row indices: '1,5,9'", _typed, label="indices: row numbers",
                      widget_args={"placeholder": "3, 17, 42"}),
            KindInput("index_file", "a file of row indices (one per line, or a JSON list)", _uploaded,
                      widget="file", label="indices: upload a list (one per line or JSON)")),
)
