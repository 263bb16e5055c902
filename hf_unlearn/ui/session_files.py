"""The files a browser session's jobs write (checkpoints, plots, downloads), and when they go.

On a public Space every visitor's job writes a folder. Left alone, they would fill the disk with the results of
visitors long gone. So each folder belongs to its session: the session keeps its last
:data:`~hf_unlearn.ui.views.KEEP_RESULTS` (what its history shows and Push sends), older ones are removed as
new ones come, and all of them go when the session ends (its tab closed, it stayed idle, or more sessions came:
``hf_unlearn.ui.sessions``). Gradio's own copies of the files it served are removed after
``HF_UNLEARN_FILES_MAX_AGE_S`` seconds (default one hour) by the housekeeping thread
(``hf_unlearn.ui.housekeeping``): Gradio's own ``delete_cache`` removed none of them (Gradio 6.31: the files it
copies for outputs are not in the sets its sweep reads; the disk grew 5.8 MB a minute in ``scripts/soak.py`` with
it on).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .jobs import env_count
from .views import KEEP_RESULTS

#: how long Gradio keeps its copies of the files a page was shown (plots, downloads), by default
DEFAULT_FILES_MAX_AGE_S = 3600


def session_folder(state: dict[str, Any], prefix: str) -> Path:
    """A new folder for a job's files, recorded in the session's ``state``; its oldest beyond the last
    ``KEEP_RESULTS`` are removed now."""
    out = Path(tempfile.mkdtemp(prefix=prefix))
    folders = [*state.get("folders", []), str(out)]
    for old in folders[:-KEEP_RESULTS]:
        shutil.rmtree(old, ignore_errors=True)
    state["folders"] = folders[-KEEP_RESULTS:]
    return out


def drop_session_files(state: dict[str, Any] | None) -> None:
    """Remove every folder of a session that has ended (Gradio calls this as it deletes the session's state)."""
    for folder in (state or {}).get("folders", []):
        shutil.rmtree(folder, ignore_errors=True)


def files_max_age_s() -> int:
    """``HF_UNLEARN_FILES_MAX_AGE_S``: the age after which Gradio's copies of served files are removed."""
    return env_count("HF_UNLEARN_FILES_MAX_AGE_S", DEFAULT_FILES_MAX_AGE_S, "a whole number of seconds (e.g. 3600)")


def sweep_served_files(folder: Path, age_s: float, now: float | None = None) -> int:
    """Remove the files under Gradio's cache ``folder`` changed more than ``age_s`` ago, and the folders they
    leave empty; returns how many files went. A file removed meanwhile (by Gradio) is skipped."""
    now = time.time() if now is None else now
    removed = 0
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True) if folder.is_dir() else []:
        try:
            if path.is_symlink() or path.is_file():
                if now - path.lstat().st_ctime > age_s:
                    path.unlink()
                    removed += 1
            elif path.is_dir() and not any(path.iterdir()) and now - path.lstat().st_ctime > age_s:
                path.rmdir()
        except OSError:
            continue
    return removed
