"""The app's one housekeeping thread: Gradio's copies of served files go after ``HF_UNLEARN_FILES_MAX_AGE_S``
(``session_files``), stale sessions after ``HF_UNLEARN_SESSION_IDLE_S`` or beyond ``HF_UNLEARN_SESSIONS_MAX``
(``sessions``). A public Space runs for weeks; without this its disk and memory grow with every visitor."""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path
from typing import Any

from .session_files import files_max_age_s, sweep_served_files
from .sessions import max_sessions, session_idle_s, sweep_sessions

#: the longest wait between two sweeps (a session beyond the most kept is freed within this)
MAX_INTERVAL_S = 30

_APPS: weakref.WeakSet = weakref.WeakSet()
_THREAD: list[threading.Thread] = []


def start_housekeeping(app: Any) -> None:
    """Sweep ``app``'s sessions and Gradio's cache folder from now on (one thread per process, for every app it
    serves). The settings are read here, so that a bad value stops the app at its start, in one line."""
    age, idle, most = files_max_age_s(), session_idle_s(), max_sessions()
    _APPS.add(app)
    if _THREAD:
        return
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder())

    def sweep() -> None:
        while True:
            time.sleep(max(1, min(MAX_INTERVAL_S, age // 4)))  # a served file lives at most 1.25 × its age
            sweep_served_files(folder, age)
            for served in list(_APPS):
                holder = getattr(served, "state_holder", None)
                if holder is not None:
                    try:
                        sweep_sessions(holder, idle, most)
                    except (RuntimeError, KeyError):  # a session changed under the sweep: the next one frees it
                        continue

    _THREAD.append(threading.Thread(target=sweep, name="hf-unlearn-housekeeping", daemon=True))
    _THREAD[0].start()
