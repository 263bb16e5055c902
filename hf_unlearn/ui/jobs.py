"""One unlearning run, comparison or audit in a worker thread of the user's session, reporting through a queue;
cancellable."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from ..errors import Cancelled, UnlearnError


class Job:
    """Runs ``target(progress=..., cancel=...)`` (a run, a comparison or an audit); the page reads ``events`` and
    sets ``cancel``."""

    def __init__(self, target: Callable[..., Any]) -> None:
        self.target = target
        self.cancel = threading.Event()
        self.events: queue.Queue = queue.Queue()
        self.result: Any = None
        self.error: str | None = None
        #: where the job stands, for the page's status line ("12/64 rbm, seed 5: … · about 2 min left")
        self.progress_text = ""
        self.thread = threading.Thread(target=self._run, name="hf-unlearn-job", daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.target(progress=self.events.put, cancel=self.cancel)
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
    task = f"[{ev['task'] + 1}/{ev['tasks']} {ev['task_name']}] " if "task" in ev else ""
    if "loss" not in ev:  # a task done without training (an audit's reference read from the cache)
        return f"{task}{ev.get('phase')}"
    return (f"{task}{ev.get('phase')}: epoch {ev.get('epoch')}/{ev.get('epochs')} "
            f"step {ev.get('step')}/{ev.get('steps')} loss {ev['loss']:.4f}")


def time_left(elapsed: float, fraction: float) -> str:
    """The rest (" · about 2 min left") of a job at its pace so far (nothing until a twentieth is done, when a
    first run's start-up would make the estimate meaningless)."""
    if fraction < 0.05 or fraction >= 1:
        return ""
    left = elapsed * (1 - fraction) / fraction
    return f" · about {left / 60:.0f} min left" if left >= 90 else f" · about {max(left, 1):.0f} s left"


def follow(job: Job, progress: Any, lines: list[str], every_step: bool = True) -> Any:
    """Relay a job's events to the page until it ends: the progress bar, and the log's text as it grows.

    A comparison's or an audit's events carry ``task``/``tasks``: the bar then runs once over the whole job,
    with the time left at its pace so far, which ``job.progress_text`` also holds for the page's status line.
    ``every_step=False`` (an audit's many short runs): the log gets one line per finished run, not a dozen.
    """
    import time

    start = time.perf_counter()
    try:
        while True:
            try:
                ev = job.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if ev is None:
                return
            fraction = ev["step"] / max(ev["steps"], 1)
            desc = f"{ev['phase']} epoch {ev['epoch']}/{ev['epochs']}" if "loss" in ev else ev["phase"]
            if "task" in ev:
                fraction = (ev["task"] + fraction) / ev["tasks"]
                desc = (f"{ev['task'] + 1}/{ev['tasks']} {ev['task_name']}: {desc}"
                        f"{time_left(time.perf_counter() - start, fraction)}")
            progress(fraction, desc=desc)
            job.progress_text = desc
            finished = ev["step"] == ev["steps"] and ev["epoch"] == ev["epochs"]
            if finished or (every_step and ev["step"] % max(1, ev["steps"] // (ev["epochs"] * 4)) == 0):
                lines.append(log_line(ev))
                yield "\n".join(lines[-200:])
    finally:
        job.cancel.set()  # a cancelled or closed page stops the worker too
