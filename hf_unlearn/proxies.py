"""Proxy requests: stand-ins of the real request's kind and size, to tune a method on without touching it.

Tuning on the real request would need its Retrain, exactly the cost unlearning
is meant to avoid, and settings chosen on it overfit it. The field tunes on
held-out requests instead: forget *other* classes for a class-wise request,
other rows for a random one. Each proxy is disjoint from the real forget set
and is drawn from a fixed, seeded pool that does not depend on the request
where the kind allows it, so the proxies' Retrain references (ordinary cached
references) serve every later request they stay disjoint from.

A kind says how its proxies are drawn (:attr:`ForgetKind.proxy`); a kind that
does not (random, listed rows, a column filter) gets seeded random draws of as
many rows: the ``index``-th pool permutation's first rows that are not in the
real forget set. When the real set is small that is the pool draw itself, the
same for every request; a large one (10 % of the data) always overlaps the
pool, so its proxies are its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UnlearnError
from .forget import ForgetSpec
from .forget.kind import TrainingSplit
from .forget.spec import select_forget

#: proxies of a request when no number is given (two, as the field's tuning protocols use)
DEFAULT_PROXIES = 2
#: the seed of the proxy pool: fixed, so that proxies (and their cached references) recur across requests
POOL_SEED = 20231


@dataclass(frozen=True)
class Proxy:
    """A proxy request and what to call it (a random draw's listed rows are not worth printing)."""

    spec: ForgetSpec
    description: str


def random_rows(train: TrainingSplit, avoid: np.ndarray, size: int, index: int, pool_seed: int) -> np.ndarray:
    """``size`` rows of the ``index``-th seeded pool permutation, skipping ``avoid`` (sorted)."""
    order = np.random.default_rng([pool_seed, index]).permutation(len(train))
    free = order[~np.isin(order, avoid)]
    if len(free) < size:
        raise UnlearnError(f"the training split has {len(free)} rows outside the request, fewer than the "
                           f"{size} a proxy request needs")
    return np.sort(free[:size])


def proxy_requests(spec: ForgetSpec, train: TrainingSplit, count: int = DEFAULT_PROXIES,
                   pool_seed: int = POOL_SEED) -> list[Proxy]:
    """``count`` requests of ``spec``'s kind and size, each disjoint from ``spec``'s forget set."""
    if count < 1:
        raise UnlearnError(f"tuning needs at least one proxy request, got {count}")
    real = select_forget(spec, train)
    out: list[Proxy] = []
    for index in range(count):
        if spec.the_kind.proxy is not None:
            kind, fields = spec.the_kind.proxy(spec.fields, train, real, index, pool_seed)
            proxy = ForgetSpec(kind, seed=spec.seed, retain_fraction=spec.retain_fraction, **fields)
            description = proxy.describe()
        else:
            proxy = ForgetSpec("indices", indices=tuple(int(i) for i in random_rows(train, real, len(real), index,
                                                                                    pool_seed)),
                               seed=spec.seed, retain_fraction=spec.retain_fraction)
            description = f"random draw {index + 1} of the proxy pool ({len(real)} rows outside the request)"
        rows = select_forget(proxy, train)
        if np.isin(rows, real).any():  # a kind's own rule must keep its proxies apart from the real request
            raise UnlearnError(f"proxy request {index + 1} ({proxy.describe()}) overlaps the real request")
        out.append(Proxy(proxy, description))
    return out


__all__ = ["DEFAULT_PROXIES", "POOL_SEED", "Proxy", "proxy_requests", "random_rows"]
