"""The running job's cancel event, visible to code far below the call that received it.

The app cancels a run by setting a ``threading.Event``. Loading, decoding,
the engine's training and evaluation loops and the mask saliency all check
it, deep inside helpers whose signatures should not grow a cancel argument
each: a context variable carries the event to them. It is per thread (the
app runs each job in its own), and unset outside a run. This is the only path.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from .errors import Cancelled

_EVENT: ContextVar[threading.Event | None] = ContextVar("hf_unlearn_cancel", default=None)
F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def cancellable(event: threading.Event | None) -> Iterator[None]:
    """Within this block, :func:`raise_if_cancelled` answers to ``event``."""
    token = _EVENT.set(event)
    try:
        yield
    finally:
        _EVENT.reset(token)


def raise_if_cancelled() -> None:
    """Stop here with :class:`Cancelled` when the current run's event is set (a no-op outside a run)."""
    event = _EVENT.get()
    if event is not None and event.is_set():
        raise Cancelled()


def honours_cancel(fn: F) -> F:
    """Run ``fn`` inside :func:`cancellable` of its ``cancel`` keyword argument."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("cancel") is None:  # no event of its own: an enclosing run's (if any) still applies
            return fn(*args, **kwargs)
        with cancellable(kwargs["cancel"]):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
