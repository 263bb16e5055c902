"""Sessions the app frees itself: idle ones, the least recently used beyond the most kept, never one whose job
runs; a caller without the page's heartbeat (a script, curl) no longer leaves its models and folders for good."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from conftest import NO_FILES
from test_app import free_port

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


@pytest.fixture
def headless_callers(demo_assets, monkeypatch):
    """The app, and a way to call /run as a script does: no heartbeat, so its session never closes."""
    import gradio_client.client as gradio_client

    from hf_unlearn.ui import build_app, queued

    monkeypatch.setattr(gradio_client.Client, "_stream_heartbeat", staticmethod(lambda *a, **k: None))
    app = queued(build_app())
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)

    def call(cls: int) -> str:
        c = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
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
    assert sweep_sessions(holder, idle_s=3600, most=1) == 2
    assert sessions[2] in holder.session_data and sessions[0] not in holder.session_data
    assert not any(f.exists() for s in sessions[:2] for f in folders[s])  # their checkpoints left the disk
    assert all(f.is_dir() for f in folders[sessions[2]])
    assert not set(sessions[:2]) & set(holder.time_last_used)


def test_an_idle_session_is_freed_but_not_while_its_job_runs(headless_callers, monkeypatch):
    from hf_unlearn.ui import sessions as sessions_module
    from hf_unlearn.ui.sessions import sweep_sessions

    app, call = headless_callers
    session = call(4)
    later = datetime.datetime.now() + datetime.timedelta(seconds=7200)
    monkeypatch.setattr(sessions_module, "busy_sessions", lambda: {session})
    assert sweep_sessions(app.state_holder, idle_s=3600, most=64, now=later) == 0  # its job runs: kept
    monkeypatch.setattr(sessions_module, "busy_sessions", set)
    folders = _folders(app, session)
    assert sweep_sessions(app.state_holder, idle_s=3600, most=64, now=later) >= 1
    assert session not in app.state_holder.session_data and not any(f.exists() for f in folders)
