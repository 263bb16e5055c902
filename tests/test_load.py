"""Load: 32 gradio_client visitors at once on the offline demo, with the production queue, on 127.0.0.1.

They mix what a public Space meets: runs, runs cancelled while they wait or train, bad inputs, and visitors who
close their session with a 5000-epoch job queued. Every run must end with its own result (its forget class in
its own status), every cancel in the grey cancelled box, every bad input in a one-line error, and every closed
session's job must be stopped by the server (the queue empties; a 5000-epoch Retrain left running would hold it
for an hour). The figures (time per job, peak RSS of the server process) go to test-artifacts/load.json.

A second test fills a queue of one: the waiting visitor sees their position, the next is told the app is busy,
and a second job from one page is refused.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import ARTIFACTS, NO_FILES
from test_app import client, error_message, free_port

from hf_unlearn.ui.views import CANCELLED

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from app_process import wait_until  # noqa: E402 - the scripts folder is not a package

RUNS, CANCELS, BAD, CLOSED = 16, 6, 6, 4
MEMORY_BOUND_MB = 1500  # growth of the server process over the whole load, not its size
LONG = dict(**NO_FILES, method="retrain", epochs=5000, with_retrain=False)


def _serve():
    from hf_unlearn.ui import build_app, queued

    app = queued(build_app())
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return app, f"http://127.0.0.1:{port}/"


def test_32_concurrent_visitors_runs_cancels_bad_inputs_and_closed_sessions(demo_assets, monkeypatch):
    from hf_unlearn.ui.jobs import JOBS

    monkeypatch.setenv("HF_UNLEARN_QUEUE_SIZE", "32")  # every job of this load fits the line
    app, url = _serve()
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    outcomes: dict[str, tuple[str, str]] = {}  # visitor → (kind, status shown)
    times: dict[str, float] = {}
    errors: list[str] = []

    def visitor(name: str, kind: str, i: int) -> None:
        t0 = time.perf_counter()
        try:
            c = client(url)
            if kind == "run":
                out = c.predict(api_name="/run", forget_kind="class", forget_classes=[str(i % 10)], **NO_FILES,
                                method="ft", epochs=1, with_retrain=False)
            elif kind == "bad":
                out = c.predict(api_name="/run", **{**NO_FILES, "forget_kind": "indices", "forget_indices": "1,x"},
                                method="ft", epochs=1, with_retrain=False)
            else:
                job = c.submit(api_name="/run", **LONG)
                wait_until(lambda: len(job.outputs()) >= 2, 60)  # the job is in line or running
                if kind == "closed":
                    c.close()  # the visitor goes away: the server must stop the job
                    outcomes[name] = (kind, "")
                    return
                c.predict(api_name="/cancel")
                out = job.result(timeout=120)
            outcomes[name] = (kind, out[0])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            times[name] = time.perf_counter() - t0

    plan = ([("run", i) for i in range(RUNS)] + [("cancel", i) for i in range(CANCELS)]
            + [("bad", i) for i in range(BAD)] + [("closed", i) for i in range(CLOSED)])
    plan = [plan[(7 * k) % len(plan)] for k in range(len(plan))]  # interleaved: 7 is prime to 32
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t_start = time.perf_counter()
    visitors = [threading.Thread(target=visitor, args=(f"{kind}-{i}", kind, i)) for kind, i in plan]
    try:
        for t in visitors:
            t.start()
        for t in visitors:
            t.join(timeout=600)
        emptied = wait_until(lambda: not JOBS.running and not JOBS.waiting, 120)  # closed sessions' jobs stopped
    finally:
        done.set()
        app.close()
    wall = time.perf_counter() - t_start
    assert not errors, errors
    assert len(outcomes) == len(plan) == 32
    assert emptied, f"jobs left: {len(JOBS.running)} running, {len(JOBS.waiting)} waiting"
    for name, (kind, status) in outcomes.items():
        if kind == "run":
            cls = name.split("-")[1]
            assert "**Error" not in status and f"forget class {int(cls) % 10}." in status, (name, status)
        elif kind == "cancel":
            assert status == CANCELLED, (name, status)
        elif kind == "bad":
            message = error_message(status)
            assert "forget index 'x' is not an integer row number" in message and "\n" not in message
    runs = [times[n] for n, (k, _) in outcomes.items() if k == "run"]
    growth_mb = (peak[0] - base) / 2**20
    figures = {"visitors": len(plan), "runs": RUNS, "cancels": CANCELS, "bad_inputs": BAD, "closed_sessions": CLOSED,
               "wall_s": round(wall, 1), "run_s_mean": round(sum(runs) / len(runs), 1),
               "run_s_min": round(min(runs), 1), "run_s_max": round(max(runs), 1),
               "rss_base_mb": round(base / 2**20), "rss_peak_mb": round(peak[0] / 2**20),
               "rss_growth_mb": round(growth_mb)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(figures, indent=1))
    print(figures)
    assert growth_mb < MEMORY_BOUND_MB, figures


def test_a_full_queue_shows_the_position_refuses_the_next_visitor_and_one_job_per_page(demo_assets, monkeypatch):
    from hf_unlearn.ui.jobs import JOBS

    monkeypatch.setenv("HF_UNLEARN_QUEUE_SIZE", "1")
    app, url = _serve()
    try:
        first, second, third = client(url), client(url), client(url)
        running = first.submit(api_name="/run", **LONG)
        assert wait_until(lambda: len(JOBS.running) == 1, 60)
        waiting = second.submit(api_name="/run", **LONG)
        assert wait_until(lambda: any("Waiting in the queue: position 1 of 1" in str(o[-2]) for o in waiting.outputs()),
                     30), waiting.outputs()[-1:]
        busy = third.predict(api_name="/run", **LONG)
        assert "the app is busy: 1 job is waiting already" in error_message(busy[0])
        again = first.predict(api_name="/run", **LONG)
        assert "this page has a job running or waiting already" in error_message(again[0])
        second.predict(api_name="/cancel")  # out of the line, before it ever ran
        assert waiting.result(timeout=60)[0] == CANCELLED
        first.predict(api_name="/cancel")
        assert running.result(timeout=60)[0] == CANCELLED
        assert wait_until(lambda: not JOBS.running and not JOBS.waiting, 30)
    finally:
        app.close()


@pytest.mark.parametrize("value", ["0", "two"])
def test_a_bad_queue_setting_is_one_line(value, monkeypatch):
    from hf_unlearn.errors import UnlearnError
    from hf_unlearn.ui.jobs import JOBS

    monkeypatch.setenv("HF_UNLEARN_QUEUE_SIZE", value)
    with pytest.raises(UnlearnError, match="HF_UNLEARN_QUEUE_SIZE must be a whole number of at least 1"):
        _ = JOBS.size


def test_a_closed_session_frees_its_results_and_removes_its_folders(demo_assets):
    """A departed visitor's models and files go when their tab closes, not after Gradio's hour (a public Space
    would hold every one meanwhile)."""
    app, url = _serve()
    try:
        c = client(url)
        out = c.predict(api_name="/run", **NO_FILES, method="ft", epochs=1, with_retrain=False)
        assert out[0].startswith("Done"), out[0]
        kept = app.state_holder.session_data[c.session_hash].state_data
        (state,) = [v for v in kept.values() if isinstance(v, dict) and "folders" in v]
        folders = [Path(f) for f in state["folders"]]
        assert folders and all(f.is_dir() for f in folders)
        assert "job" not in state, "a finished job (with every model it computed) stays in the page's state"
        assert state["history"][-1]["result"] is not None  # what Push needs, while the page is open
        c.close()
        assert wait_until(lambda: not any(f.exists() for f in folders), 30), folders
        assert wait_until(lambda: c.session_hash not in app.state_holder.session_data, 30)  # state and page config
    finally:
        app.close()


def test_a_session_closed_during_its_job_leaves_nothing_behind(demo_assets):
    """A tab closed mid-job: its job stops, and neither its state, Gradio's copy of its page config nor Gradio's
    last-used time of it stays. Gradio 6.31 steps the stopped job's handler after the unload freed the session,
    and each step makes it again; the session sweep frees it once more (without that it stayed an hour)."""
    from hf_unlearn.ui.jobs import JOBS
    from hf_unlearn.ui.sessions import sweep_sessions

    app, url = _serve()
    try:
        c = client(url)
        assert c.predict(api_name="/run", **NO_FILES, method="ft", epochs=1, with_retrain=False)[0].startswith("Done")
        job = c.submit(api_name="/run", **LONG)
        assert wait_until(lambda: any("epoch" in str(o[-2]) for o in job.outputs()), 120), "the job never started"
        sessions = app.state_holder.session_data
        assert c.session_hash in sessions
        c.close()
        assert wait_until(lambda: not JOBS.running and not JOBS.waiting, 60), "the closed page's job still runs"
        time.sleep(2.0)  # the stopped job's handler takes its last steps (each one makes the session again)
        sweep_sessions(app, idle_s=3600, most=64)  # what the housekeeping thread does every 30 s
        assert c.session_hash not in sessions, "the closed session was written back and kept"
        assert c.session_hash not in app.state_holder.time_last_used
        time.sleep(2.0)
        assert c.session_hash not in sessions, "the closed session came back after the sweep"
    finally:
        app.close()


@pytest.mark.parametrize("var,value,meaning", [
    ("HF_UNLEARN_FILES_MAX_AGE_S", "0", "a whole number of seconds (e.g. 3600)"),
    ("HF_UNLEARN_FILES_MAX_AGE_S", "soon", "a whole number of seconds (e.g. 3600)"),
    ("HF_UNLEARN_SESSION_IDLE_S", "1h", "a whole number of seconds (e.g. 3600)"),
    ("HF_UNLEARN_SESSIONS_MAX", "0", "a whole number of at least 1"),
])
def test_a_bad_housekeeping_setting_stops_the_app_in_one_line(var, value, meaning, tmp_path):
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, var: value, "HF_UNLEARN_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, str(root / "app.py")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {var} must be {meaning}, got '{value}'", done.stderr


def test_the_sweep_removes_only_served_files_older_than_the_age(tmp_path):
    from hf_unlearn.ui.session_files import sweep_served_files

    old = tmp_path / "0a1b" / "report.json"
    old.parent.mkdir()
    old.write_text("{}")
    assert sweep_served_files(tmp_path, age_s=60) == 0 and old.exists()  # younger than the age: kept
    assert sweep_served_files(tmp_path, age_s=60, now=time.time() + 61) == 1
    assert not old.exists() and not old.parent.exists() and tmp_path.is_dir()  # its folder too, not the root


def test_a_finished_job_releases_the_fonts_its_thread_cached():
    """Matplotlib caches fonts per thread, with their files open; every job is a new thread, so without this the
    server's open files and memory climbed with each job in the soak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.font_manager as font_manager
    import matplotlib.pyplot as plt

    from hf_unlearn.ui.jobs import release_freed_memory

    fig, ax = plt.subplots()
    ax.set_title("forget class 3")
    fig.canvas.draw()
    plt.close(fig)
    assert font_manager._get_font.cache_info().currsize > 0
    release_freed_memory()
    assert font_manager._get_font.cache_info().currsize == 0
