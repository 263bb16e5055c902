"""One unlearning run, comparison or audit in a worker thread of the user's session, reporting through a queue;
cancellable; admitted through the app's one bounded job queue.

Gradio's own queue would hold a job without telling its visitor anything they can act on, and could not drop a
job whose visitor cancelled it or left. So every job event enters at once, and :class:`JobQueue` runs them
``HF_UNLEARN_JOB_SLOTS`` at a time (default 1: one GPU is never oversubscribed) in arrival order, lets at most
``HF_UNLEARN_QUEUE_SIZE`` wait (default 16; the next visitor is told the app is busy), shows each waiting
visitor their position, and lets Cancel, or a closed tab, take a job out of the line.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import Cancelled, UnlearnError

DEFAULT_SLOTS = 1
DEFAULT_QUEUE_SIZE = 16


def env_count(var: str, default: int, meaning: str = "a whole number of at least 1") -> int:
    """A positive whole-number setting from the environment (``default`` when unset); a one-line error that says
    what it must be (``meaning``) when it is not one."""
    raw = os.environ.get(var, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        value = -1
    if value < 1:
        raise UnlearnError(f"{var} must be {meaning}, got '{raw}'")
    return value


class JobQueue:
    """The jobs of every session: ``slots`` run at once, the others wait in arrival order, at most ``size``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.waiting: list[Job] = []
        self.running: list[Job] = []

    @property
    def slots(self) -> int:
        return env_count("HF_UNLEARN_JOB_SLOTS", DEFAULT_SLOTS)

    @property
    def size(self) -> int:
        return env_count("HF_UNLEARN_QUEUE_SIZE", DEFAULT_QUEUE_SIZE)

    def admit(self, job: Job) -> None:
        """Put ``job`` in line, or refuse it in one line when the line is full."""
        with self._cond:
            if len(self.running) >= self.slots and len(self.waiting) >= self.size:
                n = len(self.waiting)
                raise UnlearnError(f"the app is busy: {n} {'job is' if n == 1 else 'jobs are'} waiting already, the "
                                   "most it queues (HF_UNLEARN_QUEUE_SIZE); try again in a few minutes")
            self.waiting.append(job)
            self._cond.notify_all()

    def wait_turn(self, job: Job) -> None:
        """Block until ``job`` is first in line and a slot is free; a cancel meanwhile takes it out of the line."""
        with self._cond:
            while not (self.waiting and self.waiting[0] is job and len(self.running) < self.slots):
                if job.cancel.is_set():
                    raise Cancelled()
                self._cond.wait(0.2)
            self.waiting.pop(0)
            self.running.append(job)
            self._cond.notify_all()

    def leave(self, job: Job) -> None:
        with self._cond:
            for line in (self.waiting, self.running):
                if job in line:
                    line.remove(job)
            self._cond.notify_all()

    def position(self, job: Job) -> tuple[int, int] | None:
        """(place in line, jobs in line) while ``job`` waits; None once it runs."""
        with self._cond:
            return (self.waiting.index(job) + 1, len(self.waiting)) if job in self.waiting else None


#: the app's one queue (every session's jobs)
JOBS = JobQueue()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once (``find_library`` may run ``ldconfig``); None without glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # musl, macOS, Windows: no malloc_trim
        return None


def release_freed_memory() -> None:
    """Hand back what a finished job leaves behind for nobody: Matplotlib's fonts and glibc's freed arenas.

    Each job runs in a thread of its own. Matplotlib caches its fonts per thread (64 entries, each with its font
    files open), and glibc keeps what a thread's arena freed; in the soak (``scripts/soak.py``) the server's RSS
    and open files climbed with every job, with no Python object behind the RSS. Both caches are rebuilt at once
    by the next plot or allocation.
    """
    import sys

    font_manager = sys.modules.get("matplotlib.font_manager")
    clear_fonts = getattr(getattr(font_manager, "_get_font", None), "cache_clear", None)
    if clear_fonts is not None:
        clear_fonts()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class Job:
    """Runs ``target(progress=..., cancel=...)`` (a run, a comparison or an audit); the page reads ``events`` and
    sets ``cancel``."""

    def __init__(self, target: Callable[..., Any]) -> None:
        self.target = target
        self.cancel = threading.Event()
        self.events: queue.Queue = queue.Queue()
        self.result: Any = None
        self.error: str | None = None
        #: the job ended because it was cancelled (its error says so too)
        self.cancelled = False
        self.thread = threading.Thread(target=self._run, name="hf-unlearn-job", daemon=True)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        try:
            JOBS.wait_turn(self)
            self.result = self.target(progress=self.events.put, cancel=self.cancel)
        except Cancelled:
            self.cancelled = True
            self.error = "cancelled: the run was stopped and nothing was kept"
        except UnlearnError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - the page shows one line, never a traceback
            self.error = f"unexpected error ({type(exc).__name__}): {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            JOBS.leave(self)
            self.events.put(None)
            release_freed_memory()

    def start(self) -> Job:
        JOBS.admit(self)
        self.thread.start()
        return self


#: each browser session's latest job, so that Cancel finds it by the session alone (the page's state can lag a
#: click behind); weak, so a job no page holds any more is not kept alive here
_LATEST: weakref.WeakValueDictionary[str, Job] = weakref.WeakValueDictionary()
#: sessions a job handler is working for (checking the form before its job, writing the downloads after it), with
#: how many handlers: the session sweep must not free their state under them
_IN_USE: collections.Counter[str] = collections.Counter()
#: guards _LATEST and _IN_USE, read by the session sweep's thread while handlers write them
_LATEST_LOCK = threading.Lock()


def _latest(session: str | None) -> Job | None:
    if not session:
        return None
    with _LATEST_LOCK:
        return _LATEST.get(session)


def start_job(session: str | None, target: Callable[..., Any]) -> Job:
    """Queue ``target`` as the session's job (what its Cancel buttons stop); one at a time per page, so that one
    visitor cannot fill the line from one tab."""
    with _LATEST_LOCK:  # checked and set at once: two quick clicks cannot both start a job
        earlier = _LATEST.get(session) if session else None
        if earlier is not None and earlier.running:
            raise UnlearnError("this page has a job running or waiting already: wait for it to finish, or cancel it")
        job = Job(target).start()
        if session:
            _LATEST[session] = job
    return job


@contextlib.contextmanager
def session_in_use(session: str | None) -> Iterator[None]:
    """Mark ``session`` busy while a handler works for it, job or no job: the session sweep frees no busy session
    (it would remove the folder the handler is writing the downloads to)."""
    if not session:
        yield
        return
    with _LATEST_LOCK:
        _IN_USE[session] += 1
    try:
        yield
    finally:
        with _LATEST_LOCK:
            _IN_USE[session] -= 1
            if _IN_USE[session] <= 0:
                del _IN_USE[session]


def busy_sessions() -> set[str]:
    """The sessions with a job running or waiting, or a handler at work."""
    with _LATEST_LOCK:
        return {session for session, job in _LATEST.items() if job.running} | set(_IN_USE)


def cancel_session(session: str | None) -> bool:
    """Stop the session's job (its page was closed): True when one was running or waiting."""
    job = _latest(session)
    if job is None or not job.running:
        return False
    job.cancel.set()
    return True


def session_job(session: str | None, state: dict[str, Any] | None) -> Job | None:
    """The job a Cancel click of this session means: the one it started last."""
    return _latest(session) or (state or {}).get("job")


def log_line(ev: dict[str, Any]) -> str:
    task = f"[{ev['task'] + 1}/{ev['tasks']} {ev['task_name']}] " if "task" in ev else ""
    if "stage" in ev:
        return f"{task}{ev['stage']}"
    if "loss" not in ev:  # a task done without training (an audit's reference read from the cache)
        return f"{task}{ev.get('phase')}"
    return (f"{task}{ev.get('phase')}: epoch {ev.get('epoch')}/{ev.get('epochs')} "
            f"step {ev.get('step')}/{ev.get('steps')} loss {ev['loss']:.4f}")


def seconds_left(left: float) -> str:
    return f" · about {left / 60:.0f} min left" if left >= 90 else f" · about {max(left, 1):.0f} s left"


#: the cost of a phase, in epochs over the retain set (what a Retrain epoch costs), where it trains no epochs
PREPARING_EPOCHS = 1.0
EVALUATING_EPOCHS = 0.5


def run_plan(config: Any) -> list[list[Any]]:
    """A run's phases in order, each ``[name, weight]`` (weight: its cost in retain-set epochs), for the overall
    bar and the time left: preparing data, then per seed its Retrain reference (if any), the method, the
    evaluation. A reference read from the cache weighs nothing once the job says so."""
    seeds = list(config.options.run_seeds)
    retrain = config.retrain_settings.epochs if config.retrain_settings is not None else 0
    method_epochs = float(getattr(config.settings, "epochs", 1) or 1)
    plan: list[list[Any]] = [["preparing data", PREPARING_EPOCHS]]
    for i in range(len(seeds)):
        at = f" {i + 1}/{len(seeds)}" if len(seeds) > 1 else ""
        if retrain:
            plan.append([f"retrain reference{at}", float(retrain)])
        plan += [[f"unlearning with {config.method}{at}", method_epochs], [f"evaluating{at}", EVALUATING_EPOCHS]]
    return plan


RETRAIN = "retrain reference"


def _kind(phase: str) -> str:
    """Which pace a phase runs at: Retrain's, or a method's (preparing and evaluating go at Retrain's)."""
    return "method" if phase.startswith("unlearning with") else RETRAIN


class Tracker:
    """Where a job stands, for its one progress display: the phase by name, the phase's own steps, the whole
    job's share done and the time left.

    A run follows its plan (:func:`run_plan`): the time left is the rest of the plan's weight at the seconds per
    epoch the training seen so far took. A comparison's or an audit's events carry ``task``/``tasks``: the job's
    share is the tasks done, and the time left is the pace so far over them.
    """

    def __init__(self, plan: list[list[Any]] | None = None, phase: str = "starting") -> None:
        self.set_plan(plan or [])
        self.at = -1
        self.started = self.phase_started = time.perf_counter()
        self.phase = phase
        self.detail = ""
        self.phase_fraction = 0.0
        #: seconds per epoch, measured apart for Retrain (epochs over the retain set) and for the methods (some
        #: run their epochs over the small forget set alone)
        self.pace: dict[str, float] = {}
        self.task: tuple[int, int, str] | None = None
        #: (place, jobs in line) while the job waits for a slot
        self.queued: tuple[int, int] | None = None
        #: Cancel was pressed: the job stops at its next step
        self.cancelling = False

    def set_plan(self, plan: list[list[Any]]) -> None:
        """Follow ``plan`` (:func:`run_plan`) from here on: known once the request is checked, after the display
        has already started its clock."""
        #: [name, weight, planned weight]: a cached reference weighs nothing, one trained after all its planned
        #: weight again
        self.plan = [[name, weight, weight] for name, weight in plan]

    def feed(self, ev: dict[str, Any]) -> None:
        now = time.perf_counter()
        if "task" in ev:
            if self.task is None or ev["task"] != self.task[0]:
                self.phase_fraction = 0.0
            self.task = (ev["task"], ev["tasks"], ev["task_name"])
        if "stage" in ev:
            self.phase, self.detail, self.phase_fraction, self.phase_started = ev["stage"], "", 0.0, now
            self._advance(ev["stage"])
        elif "loss" in ev:
            self.phase_fraction = ev["step"] / max(ev["steps"], 1)
            self.detail = f"epoch {ev['epoch']}/{ev['epochs']} · step {ev['step']}/{ev['steps']}"
            epochs_done = self.phase_fraction * ev["epochs"]
            if epochs_done > 0 and now > self.phase_started:
                self.pace[_kind(self.phase)] = (now - self.phase_started) / epochs_done
        elif "step" in ev:  # a task that ends without training (an audit's reference read from the cache)
            self.phase_fraction = ev["step"] / max(ev["steps"], 1)

    def _advance(self, stage: str) -> None:
        for i in range(self.at + 1, len(self.plan)):
            if stage.startswith(self.plan[i][0]):
                for skipped in self.plan[self.at + 1:i]:  # phases that did not happen (no reference asked)
                    skipped[1] = 0.0
                self.at = i
                if "read from the cache" in stage:  # the same request's other seeds are likely cached too
                    for entry in self.plan[i:]:
                        if entry[0].startswith(RETRAIN):
                            entry[1] = 0.0
                else:
                    self.plan[i][1] = self.plan[i][2]
                return

    def fraction(self) -> float:
        if self.task is not None:
            task, tasks, _ = self.task
            return min(1.0, (task + self.phase_fraction) / max(tasks, 1))
        total = sum(w for _, w, _ in self.plan)
        if self.at < 0 or total <= 0:
            return 0.0
        done = sum(w for _, w, _ in self.plan[:self.at]) + self.plan[self.at][1] * self.phase_fraction
        return min(1.0, done / total)

    def seconds_left(self) -> float | None:
        """The time left, or None while there is nothing to base it on yet."""
        elapsed = time.perf_counter() - self.started
        if self.task is not None:
            f = self.fraction()
            return elapsed * (1 - f) / f if 0.05 <= f < 1 else None
        if not self.pace or self.at < 0:
            return None
        fallback = self.pace.get(RETRAIN, next(iter(self.pace.values())))
        rest = [(self.plan[self.at][0], self.plan[self.at][1] * (1 - self.phase_fraction)),
                *((name, w) for name, w, _ in self.plan[self.at + 1:])]
        return sum(w * self.pace.get(_kind(name), fallback) for name, w in rest)

    def html(self) -> str:
        """The progress display: the phase by name, a bar over the whole job, its share, the time spent and left."""
        import html

        if self.queued is not None:
            place, waiting = self.queued
            ahead = "it starts when the job before it ends" if place == 1 else f"{place - 1} jobs are ahead of it"
            return (f'<div class="hfu-progress hfu-queued" role="status"><div class="hfu-phase"><b>Waiting in the '
                    f'queue: position {place} of {waiting}</b> · {ahead}</div><div class="hfu-foot">'
                    f'{time.perf_counter() - self.started:.0f} s waited · Cancel takes it out of the queue</div>'
                    '</div>')
        f = self.fraction()
        left = self.seconds_left()
        elapsed = time.perf_counter() - self.started
        task = f"{self.task[0] + 1}/{self.task[1]} {self.task[2]} · " if self.task else ""
        head = ("Cancelling: the job stops at its next step · " if self.cancelling else "") + task
        foot = f"{f:.0%} of the job · {elapsed:.0f} s so far" + (
            seconds_left(left) if left is not None else " · estimating the time left…")
        return (f'<div class="hfu-progress" role="progressbar" aria-valuenow="{f * 100:.0f}" aria-valuemin="0" '
                f'aria-valuemax="100"><div class="hfu-phase">{html.escape(head)}<b>{html.escape(self.phase)}</b>'
                f'{html.escape(" · " + self.detail) if self.detail else ""}</div>'
                f'<div class="hfu-bar"><span style="width:{f * 100:.1f}%"></span></div>'
                f'<div class="hfu-foot">{html.escape(foot)}</div></div>')


def follow(job: Job, lines: list[str], tracker: Tracker, every_step: bool = True) -> Any:
    """Relay a job's events to the page until it ends: yields (the progress display, the log's text) at most
    four times a second, and at every new phase.

    ``every_step=False`` (an audit's many short runs): the log gets one line per finished run, not a dozen.
    """
    last = 0.0
    try:
        while True:
            tracker.queued = JOBS.position(job)
            tracker.cancelling = job.cancel.is_set()
            try:
                ev = job.events.get(timeout=0.5)
            except queue.Empty:
                yield tracker.html(), "\n".join(lines[-200:])  # the clock moves while a phase is quiet
                continue
            if ev is None:
                return
            tracker.feed(ev)
            new_line = "stage" in ev and every_step
            if "step" in ev:  # a training step, or a task done without training (a cached reference)
                finished = ev["step"] == ev["steps"] and ev.get("epoch") == ev.get("epochs")
                # one line an epoch: a run's whole log (Retrain's 12 epochs on the demo included) fits the box
                new_line = finished or (every_step and "loss" in ev
                                        and ev["step"] % max(1, ev["steps"] // ev["epochs"]) == 0)
            if new_line:
                lines.append(log_line(ev))
            now = time.perf_counter()
            if new_line or now - last >= 0.25:
                last = now
                yield tracker.html(), "\n".join(lines[-200:])
    finally:
        job.cancel.set()  # a cancelled or closed page stops the worker too
