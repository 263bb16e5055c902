"""Class-wise forgetting: every training row whose label is one of the given classes.

TA is measured on the test rows of the remaining classes; the forgotten classes' test rows are
reported apart (their accuracy should fall to about 0, as Retrain's does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UnlearnError
from ..fields import doc
from .kind import ForgetKind, KindInput, TestRule, TrainingSplit


@dataclass(frozen=True)
class ClassFields:
    classes: tuple[str | int, ...] = doc((), "class names or ids to forget")


def resolve_classes(classes: tuple[str | int, ...], class_names: list[str]) -> list[int]:
    """Class names or ids to ids; an unknown class names the valid ones."""
    by_name = {n: i for i, n in enumerate(class_names)}
    by_lower = {n.lower(): i for i, n in enumerate(class_names)}
    ids: list[int] = []
    for c in classes:
        if isinstance(c, str) and c in by_name:
            ids.append(by_name[c])
        elif isinstance(c, str) and c.lower() in by_lower:
            ids.append(by_lower[c.lower()])
        elif isinstance(c, (int, np.integer)) or (isinstance(c, str) and c.strip().lstrip("-").isdigit()):
            i = int(c)
            if not 0 <= i < len(class_names):
                raise UnlearnError(
                    f"class id {i} is out of range: valid ids are 0..{len(class_names) - 1} "
                    f"({', '.join(class_names)})"
                )
            ids.append(i)
        else:
            raise UnlearnError(f"class '{c}' is not in the label set; valid classes: {', '.join(class_names)}")
    return sorted(set(ids))


def check(f: ClassFields) -> None:
    if not f.classes:
        raise UnlearnError("choose at least one class to forget")


def select(f: ClassFields, train: TrainingSplit, _seed: int) -> np.ndarray:
    return np.flatnonzero(np.isin(train.labels, resolve_classes(f.classes, train.class_names)))


def test_split(f: ClassFields, test_labels: np.ndarray, class_names: list[str]) -> TestRule:
    ids = resolve_classes(f.classes, class_names)
    forgotten = np.isin(test_labels, ids)
    return TestRule(np.flatnonzero(~forgotten), np.flatnonzero(forgotten), ids)


def proxy(f: ClassFields, train: TrainingSplit, _rows: np.ndarray, index: int, pool_seed: int
          ) -> tuple[str, dict[str, Any]]:
    """The ``index``-th group of as many *other* classes, from one seeded order of the classes.

    The order does not depend on the request, so requests for different classes share most proxies (and
    their cached Retrain references): forgetting 3 and then 5 both tune on the first classes that are neither.
    """
    mine = resolve_classes(f.classes, train.class_names)
    present = [int(c) for c in np.unique(train.labels)]
    order = [c for c in np.random.default_rng(pool_seed).permutation(present) if int(c) not in mine]
    need = len(mine)
    group = order[index * need:(index + 1) * need]
    if len(group) < need:
        raise UnlearnError(f"there are not enough other classes for {index + 1} proxy requests of {need} "
                           f"class{'es' if need > 1 else ''} each ({len(order)} others): ask for fewer proxies")
    return "class", {"classes": tuple(train.class_names[int(c)] for c in group)}


def parse_classes(raw: str | list | tuple | None) -> dict[str, tuple[str, ...]]:
    """'cat,dog' or a list of them (a repeated flag, the app's multi-select) as a tuple of names."""
    if raw is None:
        return {}
    items = [raw] if isinstance(raw, str) else list(raw)
    return {"classes": tuple(c.strip() for group in items for c in str(group).split(",") if c.strip())}


KIND = ForgetKind(
    name="class", title="classes", fields=ClassFields, select=select, check=check,
    describe=lambda f, _seed: "class " + ", ".join(str(c) for c in f.classes),
    test_split=test_split,
    proxy=proxy,
    inputs=(KindInput("classes", "class name or id (repeat or comma-separate)", parse_classes,
                      flag="--forget-class", widget="classes", label="Classes to forget", repeat=True),),
    test_rule="the remaining classes' test rows (the forgotten classes' test accuracy is reported apart)",
)
