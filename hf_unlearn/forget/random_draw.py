"""Random forgetting: a seeded random fraction or count of the training rows, optionally stratified by label."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnlearnError
from ..fields import doc
from .kind import ForgetKind, TrainingSplit


@dataclass(frozen=True)
class RandomFields:
    fraction: float | None = doc(None, "random fraction of the training split",
                                 label="random: fraction of the training split",
                                 widget={"type": "slider", "minimum": 0.01, "maximum": 0.5, "step": 0.01, "value": 0.1})
    count: int | None = doc(None, "random number of training rows", widget={"type": None})  # the CLI's alternative
    stratified: bool = doc(False, "draw the random forget set evenly per class", flag="--stratified",
                           label="random: stratified by class")


def check(f: RandomFields) -> None:
    if f.fraction is None and f.count is None:
        raise UnlearnError("a random forget set needs a fraction or a count of rows")
    if f.fraction is not None and f.count is not None:
        raise UnlearnError("give a random forget fraction or a count, not both")
    if f.fraction is not None and not 0.0 < f.fraction < 1.0:
        raise UnlearnError(f"forget fraction must be between 0 and 1 (exclusive), got {f.fraction}")
    if f.count is not None and f.count <= 0:
        raise UnlearnError(f"forget count must be a positive number of rows, got {f.count}")


def select(f: RandomFields, train: TrainingSplit, seed: int) -> np.ndarray:
    labels, n = train.labels, len(train)
    rng = np.random.default_rng(seed)
    k = f.count if f.count is not None else int(round(f.fraction * n))
    if k >= n:
        raise UnlearnError(f"the forget set would be the whole training split ({k} of {n} rows): forget fewer")
    if not f.stratified:
        return rng.choice(n, size=k, replace=False)
    parts = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        take = int(round(k * len(rows) / n))
        parts.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    return np.concatenate(parts) if parts else np.array([], dtype=np.int64)


def describe(f: RandomFields, seed: int) -> str:
    amount = f"{f.fraction:.1%}" if f.fraction is not None else f"{f.count} rows"
    return f"random {amount} (seed {seed}{', stratified' if f.stratified else ''})"


KIND = ForgetKind(name="random", title="a random fraction/count", fields=RandomFields, select=select,
                  describe=describe, check=check)
