"""hf-unlearn: make a Hub image classifier forget a class or a subset of its data, and measure it."""

from __future__ import annotations

from .api import UnlearnResult, unlearn
from .config import DataSource, ForgetSpec, ModelSource
from .errors import Cancelled, UnlearnError
from .methods import available_methods, get_method
from .report import UnlearnReport

__version__ = "0.1.0"

__all__ = [
    "Cancelled", "DataSource", "ForgetSpec", "ModelSource", "UnlearnError", "UnlearnReport", "UnlearnResult",
    "available_methods", "get_method", "unlearn",
]
