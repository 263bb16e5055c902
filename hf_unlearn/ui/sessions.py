"""Sessions the app frees itself: a closed tab's at once, and any session idle for ``HF_UNLEARN_SESSION_IDLE_S``
or beyond the ``HF_UNLEARN_SESSIONS_MAX`` most recently used.

Gradio frees a session's state an hour after its tab closes. A caller that never opens the page's heartbeat (a
script posting to the HTTP API, ``curl``, ``gradio_client`` with the heartbeat off) never closes, though: its
state, which keeps the models of its last results for Push, and Gradio's copy of its page config stay until
Gradio's 10,000 sessions, and its folders stay on disk for good. One script calling ``/run`` in a loop could fill a
Space's memory and disk that way. A session with a job running or waiting is never freed under it.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping
from typing import Any

from .jobs import busy_sessions, env_count

#: a session unused this long is freed (its results, folders and page config), as Gradio does a closed tab's
DEFAULT_IDLE_S = 3600
#: at most this many sessions are kept; the least recently used beyond it are freed
DEFAULT_MAX_SESSIONS = 64


def session_idle_s() -> int:
    """``HF_UNLEARN_SESSION_IDLE_S``: seconds without an event after which a session is freed."""
    return env_count("HF_UNLEARN_SESSION_IDLE_S", DEFAULT_IDLE_S, "a whole number of seconds (e.g. 3600)")


def max_sessions() -> int:
    """``HF_UNLEARN_SESSIONS_MAX``: the most sessions kept at once."""
    return env_count("HF_UNLEARN_SESSIONS_MAX", DEFAULT_MAX_SESSIONS)


def free_session(holder: Any, session_id: str | None) -> None:
    """Free a session now: its state (Gradio calls ``drop_session_files`` on it, removing its folders), Gradio's
    copy of its page config, and its last-used time (Gradio never drops that one)."""
    if session_id and holder is not None and session_id in holder:
        holder.delete_state(session_id)
        holder.session_data.pop(session_id, None)
    if session_id and holder is not None:
        holder.time_last_used.pop(session_id, None)


def stale_sessions(last_used: Mapping[str, datetime.datetime], now: datetime.datetime, idle_s: float, most: int,
                   busy: Collection[str]) -> list[str]:
    """The sessions to free, oldest first: those unused for over ``idle_s`` seconds and the least recently used
    beyond the newest ``most``, except those in ``busy`` (a job of theirs runs or waits)."""
    oldest_first = sorted(last_used, key=last_used.__getitem__)
    beyond = set(oldest_first[:max(0, len(oldest_first) - most)])
    return [s for s in oldest_first if s not in busy
            and (s in beyond or (now - last_used[s]).total_seconds() > idle_s)]


def sweep_sessions(holder: Any, idle_s: float, most: int, now: datetime.datetime | None = None) -> int:
    """Free the stale sessions of one app's ``holder`` (Gradio's ``StateHolder``); returns how many went."""
    now = now or datetime.datetime.now()
    last_used = dict(holder.time_last_used)  # a copy: events of other sessions go on meanwhile
    for session_id in last_used.keys() - set(holder.session_data):
        holder.time_last_used.pop(session_id, None)  # evicted by Gradio itself: nothing else is left of it
        last_used.pop(session_id)
    stale = stale_sessions(last_used, now, idle_s, most, busy_sessions())
    for session_id in stale:
        free_session(holder, session_id)
    return len(stale)
