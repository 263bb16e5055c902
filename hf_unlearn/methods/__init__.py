"""The method registry: every method, looked up by name."""

from __future__ import annotations

from ..errors import UnlearnError
from . import ft, ga, l1_sparse, minnorm_og, neggrad, rbm, retrain, rl, salun
from .base import Method, MethodContext

_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method (third-party methods can register themselves too)."""
    _REGISTRY[method.name] = method
    return method


for _module in (retrain, ft, ga, rl, neggrad, l1_sparse, salun, rbm, minnorm_og):
    register(_module.METHOD)

_ALIASES = {
    "minnorm": "minnorm-og", "minnorm_og": "minnorm-og", "neggrad": "neggrad+", "l1": "l1-sparse",
    "l1_sparse": "l1-sparse",
}


def available_methods() -> list[str]:
    """Names of every registered method."""
    return list(_REGISTRY)


def get_method(name: str) -> Method:
    key = (name or "").strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise UnlearnError(f"unknown method '{name}'; available methods: {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


__all__ = ["Method", "MethodContext", "available_methods", "get_method", "register"]
