"""hf-unlearn: make a Hub image classifier forget a class or a subset of its data, and measure it."""

from __future__ import annotations

from .api import UnlearnResult, run, unlearn
from .audit import Audit, audit
from .compare import Comparison, compare
from .config import DataSource, ForgetSpec, ModelSource, RunConfig, RunOptions
from .errors import Cancelled, UnlearnError
from .methods import available_methods, get_method, run_method
from .push import PushInfo, push_to_hub
from .report import UnlearnReport
from .tuning import Tuning, tune

__version__ = "0.1.0"

__all__ = [
    "Audit", "Cancelled", "Comparison", "DataSource", "ForgetSpec", "ModelSource", "PushInfo", "RunConfig",
    "RunOptions", "UnlearnError", "UnlearnReport", "UnlearnResult", "audit", "available_methods", "compare",
    "get_method", "push_to_hub", "Tuning", "run", "run_method", "tune", "unlearn",
]
