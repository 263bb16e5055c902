"""The files a browser session's jobs write (checkpoints, plots, downloads), and when they go.

On a public Space every visitor's job writes a folder. Left alone, they would fill the disk with the results of
visitors long gone. So each folder belongs to its session: the session keeps its last
:data:`~hf_unlearn.ui.views.KEEP_RESULTS` (what its history shows and Push sends), older ones are removed as
new ones come, and all of them go when the session ends (its tab closed, or Gradio's state expiry). Gradio's own
copies of the files it served are removed after ``HF_UNLEARN_FILES_MAX_AGE_S`` seconds (default one hour).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UnlearnError
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
    raw = os.environ.get("HF_UNLEARN_FILES_MAX_AGE_S", "")
    try:
        value = int(raw) if raw.strip() else DEFAULT_FILES_MAX_AGE_S
    except ValueError:
        value = 0
    if value < 1:
        raise UnlearnError(f"HF_UNLEARN_FILES_MAX_AGE_S must be a whole number of seconds (e.g. 3600), got '{raw}'")
    return value


def delete_cache_setting() -> tuple[int, int]:
    """Gradio's ``delete_cache`` (how often to look, what age to remove): a file lives at most 1.25 × the age."""
    age = files_max_age_s()
    return max(1, age // 4), age
