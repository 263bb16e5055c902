"""What an evaluation produced: per-split labels and logits (or the quantities metrics read from them).

Metrics are functions of these outputs alone, so one forward pass per split
serves every metric, a metric can read the Retrain reference's outputs next to
the model's own, and the ``evaluate`` module (which receives predictions,
confidences and losses rather than logits) computes the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import core

#: the most bytes of logits one split keeps for the metrics (larger ones keep only the values derived from them)
LOGITS_BUDGET = 256 << 20


@dataclass
class SplitOutputs:
    """One split's labels with the model's logits, or with the predictions, confidences and losses directly.

    Logits are rows × classes floats (4.8 GB for ImageNet's training split): an evaluation keeps them only
    while metrics may read them, and never above :data:`LOGITS_BUDGET` bytes per split; a metric that reads
    ``logits`` where they were not kept is reported as missing.
    """

    labels: np.ndarray
    logits: np.ndarray | None = None
    _given: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def from_logits(cls, logits: np.ndarray, labels: np.ndarray) -> SplitOutputs:
        return cls(np.asarray(labels), np.asarray(logits))

    @classmethod
    def from_values(cls, labels: np.ndarray, predictions: np.ndarray, true_prob: np.ndarray,
                    loss: np.ndarray) -> SplitOutputs:
        """Without logits: what the ``evaluate`` module's rows carry."""
        return cls(np.asarray(labels), None, {"predictions": np.asarray(predictions),
                                              "true_prob": np.asarray(true_prob), "loss": np.asarray(loss)})

    def __len__(self) -> int:
        return int(len(self.labels))

    def _derived(self, name: str) -> np.ndarray:
        if name not in self._given:
            if self.logits is None:
                raise KeyError(name)
            self._given[name] = {"predictions": lambda: self.logits.argmax(1),
                                 "true_prob": lambda: core.softmax_true_prob(self.logits, self.labels),
                                 "loss": lambda: core.cross_entropy(self.logits, self.labels)}[name]()
        return self._given[name]

    def subset(self, rows: np.ndarray) -> SplitOutputs:
        """These outputs at ``rows`` (the logits' rows while they are kept, else the derived values')."""
        if self.logits is not None:
            return SplitOutputs.from_logits(self.logits[rows], self.labels[rows])
        return SplitOutputs.from_values(self.labels[rows], self.predictions[rows], self.true_prob[rows],
                                        self.loss[rows])

    def release_logits(self) -> None:
        """Keep the predictions, confidences and losses, drop the logits (rows × classes floats)."""
        if self.logits is not None:
            for name in ("predictions", "true_prob", "loss"):
                self._derived(name)
            self.logits = None

    @property
    def predictions(self) -> np.ndarray:
        """The predicted class of each row."""
        return self._derived("predictions")

    @property
    def true_prob(self) -> np.ndarray:
        """Softmax probability of each row's true label (the MIA-efficacy feature)."""
        return self._derived("true_prob")

    @property
    def loss(self) -> np.ndarray:
        """Per-row cross-entropy (the MIA-loss feature)."""
        return self._derived("loss")


class MissingOutputs(KeyError):
    """A metric read a split (or the reference) this evaluation does not have; the metric is then not reported."""


@dataclass
class EvalOutputs:
    """A model's outputs on a run's splits, and the Retrain reference's when there is one.

    Splits: ``forget`` (D_f), ``retain`` (D_r), ``test`` (the forget kind's
    test rule: the remaining classes for class-wise forgetting), ``test_all``
    (the whole test split) and ``test_forget`` (the forgotten classes' test
    rows; absent unless a forget kind names classes).
    """

    splits: dict[str, SplitOutputs]
    num_classes: int
    seed: int = 0
    reference: EvalOutputs | None = None

    def __getitem__(self, name: str) -> SplitOutputs:
        if name not in self.splits:
            raise MissingOutputs(name)
        return self.splits[name]

    def has(self, name: str) -> bool:
        """Whether a split (or ``"reference"``) is available to a metric."""
        return self.reference is not None if name == "reference" else name in self.splits

    def with_reference(self, reference: EvalOutputs | None) -> EvalOutputs:
        return EvalOutputs(self.splits, self.num_classes, self.seed, reference)

    def with_forget_rows(self, rows: np.ndarray) -> EvalOutputs:
        """The same outputs with the forget split cut to ``rows`` (one request's share of a union of requests)."""
        return EvalOutputs({**self.splits, "forget": self.splits["forget"].subset(rows)}, self.num_classes,
                           self.seed)

    def release_logits(self) -> None:
        """Drop every split's logits once the metrics are computed (what stays is what the app plots)."""
        for split in self.splits.values():
            split.release_logits()
