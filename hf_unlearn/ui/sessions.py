"""Sessions the app frees itself: a closed tab's at once, and any session idle for ``HF_UNLEARN_SESSION_IDLE_S``
or beyond the ``HF_UNLEARN_SESSIONS_MAX`` most recently used.

Gradio frees a session's state an hour after its tab closes. A caller that never opens the page's heartbeat (a
script posting to the HTTP API, ``curl``, ``gradio_client`` with the heartbeat off) never closes, though: its
state, which keeps the models of its last results for Push, and Gradio's copy of its page config stay until
Gradio's 10,000 sessions, and its folders stay on disk for good. One script calling ``/run`` in a loop could fill a
Space's memory and disk that way. A session with a job running or waiting is never freed under it.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from .jobs import busy_sessions, env_count

T = TypeVar("T")

#: a session unused this long is freed (its results, folders and page config), as Gradio does a closed tab's
DEFAULT_IDLE_S = 3600
#: at most this many sessions are kept (each page load makes one); the least recently used beyond it are freed
DEFAULT_MAX_SESSIONS = 200


def session_idle_s() -> int:
    """``HF_UNLEARN_SESSION_IDLE_S``: seconds without an event after which a session is freed."""
    return env_count("HF_UNLEARN_SESSION_IDLE_S", DEFAULT_IDLE_S, "a whole number of seconds (e.g. 3600)")


def max_sessions() -> int:
    """``HF_UNLEARN_SESSIONS_MAX``: the most sessions kept at once."""
    return env_count("HF_UNLEARN_SESSIONS_MAX", DEFAULT_MAX_SESSIONS)


def on_server_loop(app: Any, fn: Callable[[], T]) -> T:
    """``fn()`` on the event loop of ``app``'s server, and its result.

    Gradio deletes expired state on that loop every second, without a lock; a session removed from another thread
    between its check and its lookup would raise there and end that task for good. Run directly where there is no
    such loop (the app not launched) or when already on it.
    """
    try:
        loop = app.server.servers[0].get_loop()
    except (AttributeError, IndexError):
        loop = None
    try:
        here = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    if loop is None or not loop.is_running() or loop is here:
        return fn()

    async def call() -> T:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=60)


#: sessions whose page has closed, and when: Gradio 6.31 goes on stepping a closed page's job handler until the job
#: stops, and each step makes the session again, so the sweep frees such a session again once its handler is done
_CLOSED: dict[str, float] = {}
_CLOSED_LOCK = threading.Lock()
#: how long a closed session is watched for that (a stopped job's handler ends within seconds)
CLOSED_WATCH_S = 600


def closed_sessions() -> set[str]:
    """The sessions whose page closed within the last :data:`CLOSED_WATCH_S` seconds."""
    now = time.monotonic()
    with _CLOSED_LOCK:
        for session_id in [s for s, t in _CLOSED.items() if now - t > CLOSED_WATCH_S]:
            del _CLOSED[session_id]
        return set(_CLOSED)


def free_session(app: Any, session_id: str | None, closed: bool = False) -> None:
    """Free a session of ``app`` now: its state (Gradio calls ``drop_session_files`` on it, removing its folders),
    Gradio's copy of its page config, and its last-used time (Gradio drops that only when it evicts the session
    beyond its 10,000). ``closed``: its page has gone, so the sweep frees it again should it come back."""
    holder = getattr(app, "state_holder", None)
    if not session_id or holder is None:
        return
    if closed:
        with _CLOSED_LOCK:
            _CLOSED[session_id] = time.monotonic()

    def free() -> None:
        holder.time_last_used.pop(session_id, None)  # first: a session made again meanwhile is then seen as new
        if session_id in holder.session_data:
            holder.delete_state(session_id)
            holder.session_data.pop(session_id, None)

    on_server_loop(app, free)


def stale_sessions(last_used: Mapping[str, datetime.datetime], now: datetime.datetime, idle_s: float, most: int,
                   busy: Collection[str], closed: Collection[str] = ()) -> list[str]:
    """The sessions to free, oldest first: those whose page has ``closed``, those unused for over ``idle_s``
    seconds and the least recently used beyond the newest ``most``, except those in ``busy`` (a job of theirs runs
    or waits, or a handler works)."""
    oldest_first = sorted(last_used, key=last_used.__getitem__)
    beyond = set(oldest_first[:max(0, len(oldest_first) - most)])
    return [s for s in oldest_first if s not in busy
            and (s in closed or s in beyond or (now - last_used[s]).total_seconds() > idle_s)]


def sweep_sessions(app: Any, idle_s: float, most: int, now: datetime.datetime | None = None) -> int:
    """Free the stale sessions of ``app``; returns how many went. Each is checked again just before it goes: a
    session used or made busy since the sweep looked is kept."""
    holder = app.state_holder
    now = now or datetime.datetime.now()
    last_used = dict(holder.time_last_used)  # a copy: events of other sessions go on meanwhile
    evicted = last_used.keys() - set(holder.session_data)  # no state any more (Gradio evicted it): only its time
    if evicted:
        on_server_loop(app, lambda: [holder.time_last_used.pop(s, None) for s in evicted])
        for session_id in evicted:
            last_used.pop(session_id)
    freed = 0
    for session_id in stale_sessions(last_used, now, idle_s, most, busy_sessions(), closed_sessions()):
        if holder.time_last_used.get(session_id) != last_used[session_id] or session_id in busy_sessions():
            continue
        free_session(app, session_id)
        freed += 1
    return freed
