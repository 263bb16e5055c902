"""``run_method``: one method on a copy of a model, timed the one way RTE is defined."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, is_dataclass
from typing import Any

from torch import nn

from ..data import UnlearnData
from ..engine import Engine
from . import get_method
from .base import Method, MethodContext


@dataclass
class MethodRun:
    """The edited model, the method's wall time in seconds (device work included) and what it recorded."""

    model: nn.Module
    seconds: float
    artifacts: dict[str, Any] = field(default_factory=dict)


def run_method(engine: Engine, model: nn.Module, data: UnlearnData, method: str | Method,
               settings: Any = None, seed: int = 0) -> MethodRun:
    """Run ``method`` on a copy of ``model`` (which stays untouched) and time it: RTE.

    ``settings``: the method's settings dataclass, or a mapping of overrides of its defaults. The clock
    covers the method alone, from a device with no queued work to a device that finished the method's:
    ``unlearn()`` and the benchmarks time methods (and Retrain) here, so their figures are comparable.
    """
    from accelerate.utils import set_seed

    the_method = get_method(method) if isinstance(method, str) else method
    checked = settings if is_dataclass(settings) and not isinstance(settings, type) else \
        the_method.settings(settings)
    ctx = MethodContext(engine=engine, model=copy.deepcopy(model), data=data, seed=seed)
    set_seed(seed)
    engine.synchronize()
    t0 = time.perf_counter()
    edited = the_method.run(ctx, checked)
    engine.synchronize()
    return MethodRun(edited, time.perf_counter() - t0, ctx.artifacts)
