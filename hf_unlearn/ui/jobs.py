"""One unlearning run in a worker thread of the user's session, reporting through a queue; cancellable."""

from __future__ import annotations

import queue
import threading
from typing import Any

from ..errors import Cancelled, UnlearnError


class Job:
    """Runs a :class:`~hf_unlearn.config.RunConfig`; the page reads ``events`` and sets ``cancel``."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.cancel = threading.Event()
        self.events: queue.Queue = queue.Queue()
        self.result: Any = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="hf-unlearn-job", daemon=True)

    def _run(self) -> None:
        from ..api import run

        try:
            self.result = run(self.config, progress=self.events.put, cancel=self.cancel)
        except Cancelled:
            self.error = "cancelled: the run was stopped and nothing was kept"
        except UnlearnError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - the page shows one line, never a traceback
            self.error = f"unexpected error ({type(exc).__name__}): {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            self.events.put(None)

    def start(self) -> Job:
        self.thread.start()
        return self


def log_line(ev: dict[str, Any]) -> str:
    return f"{ev.get('phase')}: epoch {ev.get('epoch')}/{ev.get('epochs')} step {ev.get('step')}/{ev.get('steps')} " \
           f"loss {ev.get('loss', float('nan')):.4f}"
