"""Frozen descriptions of what to load and what to forget.

They are plain values so that a run can be recorded in its report, repeated
from it, and compared with another run without holding any model or data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import UnlearnError


@dataclass(frozen=True)
class ModelSource:
    """A model: a local directory or a Hub repo id, at an optional revision."""

    id: str
    revision: str | None = None


@dataclass(frozen=True)
class DataSource:
    """A dataset: a local folder, parquet file(s) or a Hub repo id.

    ``train_split`` is the split the model was trained on (``D``);
    ``test_split`` is the held-out split used for TA and the MIA non-members.
    Column names are detected when left ``None``.
    """

    id: str
    config: str | None = None
    revision: str | None = None
    train_split: str = "train"
    test_split: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    #: read the splits as streams (``load_dataset(streaming=True)``): one pass writes each to an on-disk,
    #: memory-mapped Arrow table, so a dataset larger than memory (or the disk's free RAM) still works
    streaming: bool = False


FORGET_KINDS = ("class", "random", "indices", "filter")


@dataclass(frozen=True)
class ForgetSpec:
    """What the model must forget; the retain set is always the complement.

    Exactly one kind is set:

    - ``classes``: every training row whose label is one of these (names or ids);
    - ``fraction`` or ``count``: a seeded random draw, ``stratified`` by label
      when asked, so each class loses the same share;
    - ``indices``: explicit row indices of the training split;
    - ``filter_column`` / ``filter_value``: rows where a column equals a value
      (metadata or a fine label inside a coarse one: "sub-class" forgetting).

    ``retain_fraction`` < 1 hands methods a seeded subsample of the retain set
    (MinNorm-OG works from one); metrics always use the whole retain set.
    """

    classes: tuple[str | int, ...] = ()
    fraction: float | None = None
    count: int | None = None
    stratified: bool = False
    indices: tuple[int, ...] = ()
    filter_column: str | None = None
    filter_value: Any = None
    seed: int = 0
    retain_fraction: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "indices", tuple(self.indices))
        kinds = [
            bool(self.classes),
            self.fraction is not None or self.count is not None,
            bool(self.indices),
            self.filter_column is not None,
        ]
        if sum(kinds) != 1:
            raise UnlearnError(
                "give exactly one forget specification: classes, a random fraction/count, "
                "row indices, or a column filter"
            )
        if self.fraction is not None and self.count is not None:
            raise UnlearnError("give a random forget fraction or a count, not both")
        if self.fraction is not None and not 0.0 < self.fraction < 1.0:
            raise UnlearnError(f"forget fraction must be between 0 and 1 (exclusive), got {self.fraction}")
        if self.count is not None and self.count <= 0:
            raise UnlearnError(f"forget count must be a positive number of rows, got {self.count}")
        if self.filter_column is not None and self.filter_value is None:
            raise UnlearnError(f"the column filter on '{self.filter_column}' needs a value (column=value)")
        if not 0.0 < self.retain_fraction <= 1.0:
            raise UnlearnError(f"retain_fraction must be in (0, 1], got {self.retain_fraction}")

    @property
    def kind(self) -> str:
        if self.classes:
            return "class"
        if self.fraction is not None or self.count is not None:
            return "random"
        if self.indices:
            return "indices"
        return "filter"

    def describe(self) -> str:
        """A short human phrase for logs and model cards (never the rows themselves)."""
        if self.kind == "class":
            return "class " + ", ".join(str(c) for c in self.classes)
        if self.kind == "random":
            amount = f"{self.fraction:.1%}" if self.fraction is not None else f"{self.count} rows"
            strat = ", stratified" if self.stratified else ""
            return f"random {amount} (seed {self.seed}{strat})"
        if self.kind == "indices":
            return f"{len(self.indices)} listed rows"
        return f"rows where {self.filter_column} == {self.filter_value!r}"

    def to_dict(self) -> dict[str, Any]:
        """Everything but the explicit indices (they may identify people)."""
        d = asdict(self)
        d["kind"] = self.kind
        d["indices"] = len(self.indices) if self.indices else None
        d["classes"] = list(self.classes)
        return d


@dataclass(frozen=True)
class RunOptions:
    """How a run is executed, as opposed to what it does."""

    seed: int = 0
    mixed_precision: str = "no"
    cpu: bool = False
    eval_batch_size: int = 256
    cache_dir: str | None = None
    reinit_head: bool = False

    def __post_init__(self) -> None:
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise UnlearnError(f"mixed_precision must be one of no, bf16, fp16; got '{self.mixed_precision}'")
        if self.eval_batch_size <= 0:
            raise UnlearnError(f"eval_batch_size must be positive, got {self.eval_batch_size}")
