"""The method registry: every method, looked up by name."""

from __future__ import annotations

from ..registry import Registry
from . import ft, ga, l1_sparse, minnorm_og, neggrad, none, rbm, retrain, rl, salun
from .base import Method, MethodContext
from .none import NAME as NONE

_METHODS: Registry[Method] = Registry("method", lambda m: m.name, aliases={
    "minnorm": "minnorm-og", "minnorm_og": "minnorm-og", "neggrad": "neggrad+", "l1": "l1-sparse",
    "l1_sparse": "l1-sparse",
})


def register(method: Method) -> Method:
    """Add a method (third-party methods can register themselves too; a name registered again is replaced)."""
    return _METHODS.register(method)


def unregister(name: str) -> None:
    _METHODS.unregister(name)


for _module in (retrain, ft, ga, rl, neggrad, l1_sparse, salun, rbm, minnorm_og, none):
    register(_module.METHOD)


def available_methods() -> list[str]:
    """Names of every registered method."""
    return _METHODS.names()


def get_method(name: str) -> Method:
    return _METHODS.get(name)


from .runner import MethodRun, run_method  # noqa: E402 - it looks methods up in the registry above

__all__ = ["NONE", "Method", "MethodContext", "MethodRun", "available_methods", "get_method", "register", "run_method",
           "unregister"]
