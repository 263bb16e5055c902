"""What a tuner may try for a setting: declared beside the setting itself, with ``doc(..., search=...)``.

A method's settings dataclass is the one place its settings are described; the
range each may be tuned over belongs there too, so adding a knob and its range
is one line. :func:`search_space` reads them back; the tuner
(:mod:`hf_unlearn.tuning`) turns each into an Optuna suggestion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Float:
    """A float in [low, high]; ``log``: drawn on a log scale (learning rates, penalty weights)."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Int:
    """An integer in [low, high] (epochs, schedule periods)."""

    low: int
    high: int

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high)


@dataclass(frozen=True)
class Choice:
    """One of a few values (an objective, a saliency kind)."""

    values: tuple[Any, ...]

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))


Range = Float | Int | Choice

#: the ranges most methods share: a short run is what unlearning is for, and rates span three decades
EPOCHS = Int(1, 10)
LR = Float(1e-4, 1e-1, log=True)


def search_space(settings_cls: type) -> dict[str, Range]:
    """Each tunable setting of a settings dataclass and its range (fields declared without ``search`` are fixed)."""
    return {f.name: f.metadata["search"] for f in dataclasses.fields(settings_cls)
            if f.metadata.get("search") is not None}


__all__ = ["EPOCHS", "LR", "Choice", "Float", "Int", "Range", "search_space"]
