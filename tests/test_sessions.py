"""Sessions the app frees itself: idle ones, the least recently used beyond the most kept, never one whose job
runs; a caller without the page's heartbeat (a script, curl) no longer leaves its models and folders for good."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import pytest
from conftest import NO_FILES
from test_app import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from app_process import visitor, wait_until  # noqa: E402 - the scripts folder is not a package

NOW = datetime.datetime(2026, 12, 7, 12, 0, 0)


def ago(seconds: float) -> datetime.datetime:
    return NOW - datetime.timedelta(seconds=seconds)


def test_stale_sessions_are_the_idle_and_the_oldest_beyond_the_most_kept_never_a_busy_one():
    from hf_unlearn.ui.sessions import stale_sessions

    last_used = {"fresh": ago(5), "idle": ago(4000), "older": ago(60), "oldest": ago(120), "busy": ago(9000)}
    assert stale_sessions(last_used, NOW, idle_s=3600, most=10, busy=set()) == ["busy", "idle"]
    assert stale_sessions(last_used, NOW, idle_s=3600, most=10, busy={"busy"}) == ["idle"]
    # beyond the 2 most recently used: the three oldest go, oldest first
    assert stale_sessions(last_used, NOW, idle_s=3600, most=2, busy={"busy"}) == ["idle", "oldest"]
    assert stale_sessions({}, NOW, idle_s=1, most=1, busy=set()) == []
    # a closed page's session goes however fresh (it was written back by its stopped job's last steps)
    assert stale_sessions(last_used, NOW, idle_s=3600, most=10, busy={"busy"}, closed={"fresh"}) == ["idle", "fresh"]


@pytest.fixture
def headless_callers(demo_assets):
    """The app, and a way to call /run as a script does: no heartbeat, so its session never closes."""
    from hf_unlearn.ui import build_app, queued

    app = queued(build_app())
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)

    def call(cls: int) -> str:
        c = visitor(f"http://127.0.0.1:{port}/", heartbeat=False)
        out = c.predict(api_name="/run", **NO_FILES, forget_kind="class", forget_classes=[str(cls)], method="ft",
                        epochs=1, with_retrain=False)
        assert out[0].startswith("Done"), out[0]
        c.close()
        return c.session_hash

    yield app, call
    app.close()


def _folders(app, session: str) -> list[Path]:
    kept = app.state_holder.session_data[session].state_data
    (state,) = [v for v in kept.values() if isinstance(v, dict) and "folders" in v]
    assert state["history"][-1]["result"] is not None  # a model, kept for Push
    return [Path(f) for f in state["folders"]]


def test_callers_without_a_heartbeat_are_freed_beyond_the_most_kept(headless_callers):
    from hf_unlearn.ui.sessions import sweep_sessions

    app, call = headless_callers
    sessions = [call(cls) for cls in (1, 2, 3)]
    holder = app.state_holder
    assert all(s in holder.session_data for s in sessions), "a heartbeat-less caller's session was freed by Gradio"
    folders = {s: _folders(app, s) for s in sessions}
    assert sweep_sessions(app, idle_s=3600, most=1) == 2
    assert sessions[2] in holder.session_data and sessions[0] not in holder.session_data
    assert not any(f.exists() for s in sessions[:2] for f in folders[s])  # their checkpoints left the disk
    assert all(f.is_dir() for f in folders[sessions[2]])
    assert not set(sessions[:2]) & set(holder.time_last_used)


def test_a_session_whose_job_runs_or_waits_is_never_freed(headless_callers):
    from hf_unlearn.ui.jobs import JOBS
    from hf_unlearn.ui.sessions import sweep_sessions
    from hf_unlearn.ui.views import CANCELLED

    app, _ = headless_callers
    url = f"http://127.0.0.1:{app.server_port}/"
    running, waiting = (visitor(url, heartbeat=False) for _ in range(2))
    long = dict(**NO_FILES, method="retrain", epochs=5000, with_retrain=False)
    jobs = [running.submit(api_name="/run", **long)]
    assert wait_until(lambda: JOBS.running, 60)
    jobs.append(waiting.submit(api_name="/run", **long))
    assert wait_until(lambda: JOBS.waiting, 60)
    later = datetime.datetime.now() + datetime.timedelta(seconds=7200)
    try:
        assert sweep_sessions(app, idle_s=0, most=1, now=later) == 0  # idle and beyond the most, but busy
        assert {running.session_hash, waiting.session_hash} <= set(app.state_holder.session_data)
    finally:
        for c in (waiting, running):
            c.predict(api_name="/cancel")
    assert [j.result(timeout=120)[0] for j in jobs] == [CANCELLED, CANCELLED]
    assert wait_until(lambda: not JOBS.running and not JOBS.waiting, 60)
    assert sweep_sessions(app, idle_s=0, most=64, now=later) >= 2  # now idle and free of work: both go
    assert not {running.session_hash, waiting.session_hash} & set(app.state_holder.session_data)


def test_a_handler_at_work_keeps_its_session_busy():
    from hf_unlearn.ui.jobs import busy_sessions, session_in_use

    with session_in_use("page-a"), session_in_use("page-a"):
        assert "page-a" in busy_sessions()
    assert "page-a" not in busy_sessions()
    with pytest.raises(ValueError), session_in_use("page-b"):
        raise ValueError("the handler failed")
    assert "page-b" not in busy_sessions()


def test_an_entry_picked_after_its_session_was_freed_is_not_an_error(headless_callers):
    """The page still lists the labels; the freed session does not: the pick is answered, with no change."""
    from hf_unlearn.ui.sessions import free_session

    app, _ = headless_callers
    c = visitor(f"http://127.0.0.1:{app.server_port}/", heartbeat=False)
    out = c.predict(api_name="/run", **NO_FILES, method="ft", epochs=1, with_retrain=False)
    label = out[-1]["value"]
    free_session(app, c.session_hash)
    assert c.session_hash not in app.state_holder.session_data
    opened = c.predict(api_name="/open", choice=label)  # Gradio refused a label outside the choices before
    assert opened[0] is None or opened[0] == "" or "Done" not in str(opened[0])
    c.close()
