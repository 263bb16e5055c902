"""The running job's cancel event, visible to code far below the call that received it.

The app cancels a run by setting a ``threading.Event``. Loading, decoding,
the engine's training and evaluation loops and the mask saliency all check
it, deep inside helpers whose signatures should not grow a cancel argument
each: a context variable carries the event to them. It is per thread (the
app runs each job in its own), and unset outside a run. This is the only path.

The same check enforces the wall-time limit of a job (:mod:`hf_unlearn.limits`): the outermost run, comparison,
audit or tuning sets a deadline, and a check past it stops the job as a cancel would, with its own message.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from .errors import Cancelled, UnlearnError

_EVENT: ContextVar[threading.Event | None] = ContextVar("hf_unlearn_cancel", default=None)
#: (monotonic deadline, the limit in seconds) of the job running in this thread
_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("hf_unlearn_deadline", default=None)


class TimeLimitExceeded(UnlearnError):
    """The job ran past its wall-time limit; like a cancel, nothing was written."""
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
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline[0]:
        from .limits import time_limit_message

        raise TimeLimitExceeded(time_limit_message(deadline[1]))


@contextmanager
def time_limited() -> Iterator[None]:
    """The job in this block stops at its first check past the wall-time limit in force (none: no deadline). A
    job inside another (a comparison's runs) keeps the outer deadline."""
    from .limits import current

    seconds = current().max_job_seconds
    if _DEADLINE.get() is not None or seconds is None:
        yield
        return
    token = _DEADLINE.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def honours_cancel(fn: F) -> F:
    """Run ``fn`` inside :func:`cancellable` of its ``cancel`` keyword argument, and within the job's time limit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with time_limited():
            if kwargs.get("cancel") is None:  # no event of its own: an enclosing run's (if any) still applies
                return fn(*args, **kwargs)
            with cancellable(kwargs["cancel"]):
                return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
