"""The app's one housekeeping thread: Gradio's copies of served files go after ``HF_UNLEARN_FILES_MAX_AGE_S``
(``session_files``), stale sessions after ``HF_UNLEARN_SESSION_IDLE_S`` or beyond ``HF_UNLEARN_SESSIONS_MAX``
(``sessions``). A public Space runs for weeks; without this its disk and memory grow with every visitor."""

from __future__ import annotations

import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from .session_files import files_max_age_s, sweep_served_files
from .sessions import max_sessions, session_idle_s, sweep_sessions

#: the wait between two session sweeps (a session beyond the most kept is freed within this)
SESSIONS_EVERY_S = 30

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

    files_every = max(1, age // 4)  # a served file lives at most 1.25 × its age; walking the folder more often
    tick = min(SESSIONS_EVERY_S, files_every)  # would only cost

    def sweep() -> None:
        since_files = 0
        while True:
            time.sleep(tick)
            since_files += tick
            steps = [lambda a=a: sweep_sessions(a, idle, most) for a in list(_APPS)]
            if since_files >= files_every:
                since_files = 0
                steps.append(lambda: sweep_served_files(folder, age))
            for step in steps:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - a step that fails (a file or session changed under it)
                    print(f"hf-unlearn housekeeping: {type(exc).__name__}: {exc}", file=sys.stderr)  # tries again

    _THREAD.append(threading.Thread(target=sweep, name="hf-unlearn-housekeeping", daemon=True))
    _THREAD[0].start()
