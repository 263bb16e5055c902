"""The audit's metrics: the competition's forgetting quality F, its ceiling at the audit's N, the final score.

They are metrics of a *population* of models (N unlearned and N retrained runs of one request), so they
are declared with ``scope="audit"`` and computed from :class:`AuditOutputs`, never from one evaluation;
the arithmetic lives in :mod:`hf_unlearn.forgetting_quality`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import forgetting_quality as fq
from .registry import CardEntry, Metric


@dataclass
class AuditOutputs:
    """What an audit measured: [N models, forget examples] logit-scaled confidences of both kinds, and each
    model's RA and TA (percent)."""

    unlearned: np.ndarray
    retrained: np.ndarray
    ra_unlearned: np.ndarray
    ra_retrained: np.ndarray
    ta_unlearned: np.ndarray
    ta_retrained: np.ndarray
    delta: float = fq.DELTA
    _epsilons: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_models(self) -> int:
        return int(np.asarray(self.unlearned).shape[0])

    @property
    def epsilons(self) -> np.ndarray:
        """Each forget example's ε (computed once: F and the final score both read it)."""
        if self._epsilons is None:
            self._epsilons = fq.epsilons(self.unlearned, self.retrained, self.delta)
        return self._epsilons

    def has(self, name: str) -> bool:  # the registry's check of what a metric reads; audit metrics read it all
        return True

    def forget_quality(self) -> float:
        """F over the forget examples' ε (the buckets of this N)."""
        return fq.score_from_epsilons(self.epsilons, self.n_models)

    def final_score(self) -> float:
        """F × (RA_u / RA_r) × (TA_u / TA_r), each accuracy a mean over the N models of its kind (NaN when the
        retrained models' accuracy is 0: there is no utility to compare with)."""
        ra_u, ra_r, ta_u, ta_r = (float(np.mean(v)) for v in (self.ra_unlearned, self.ra_retrained,
                                                                self.ta_unlearned, self.ta_retrained))
        if ra_r == 0 or ta_r == 0:
            return float("nan")
        return fq.final_score(self.forget_quality(), ra_u, ra_r, ta_u, ta_r)


METRICS = [
    Metric("forget_quality", "Forgetting quality F",
           "the competition's per-example score: 1 means no attack tells the unlearned models from retrained ones "
           "on any forget example, 0 means every forget example is exposed",
           "higher", (), AuditOutputs.forget_quality, table=False, scope="audit",
           card=CardEntry("forget", "forgetting_quality", "Forgetting quality F (N={n} models of each kind)")),
    Metric("forget_quality_ceiling", "Ceiling of F",
           "F between two disjoint halves of the retrained models (N/2 a side): what a perfect unlearner scores "
           "with half as many models (even identical distributions do not reach 1 with few models)",
           "higher", (), lambda a: fq.ceiling(a.retrained, delta=a.delta), table=False, scope="audit",
           card=CardEntry("forget", "forgetting_quality_ceiling",
                          "Ceiling of F at N={n} (two halves of the retrained models)")),
    Metric("final_score", "Final score",
           "F × (RA_unlearned / RA_retrained) × (TA_unlearned / TA_retrained): forgetting adjusted for utility",
           "higher", (), AuditOutputs.final_score, table=False, scope="audit",
           card=CardEntry("forget", "unlearning_final_score", "Final score F × utility (N={n})")),
]
