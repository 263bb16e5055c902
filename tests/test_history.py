"""A page's history of results: bounded in memory however long the page stays open, and every entry can be
opened again (an old one without the files that went with its folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import NO_FILES
from test_app import client, free_port


@pytest.fixture(scope="module")
def page(demo_assets):
    """The app on loopback: its URL, and the app itself (what a session keeps is read on the server's side)."""
    from types import SimpleNamespace

    from hf_unlearn.ui import build_app, queued

    app = queued(build_app())
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", app=app)
    app.close()


def _add(state: dict, n: int) -> list[str]:
    """``n`` finished runs, each with its own session folder holding a plot, as the app's handlers make them."""
    from hf_unlearn.ui.session_files import session_folder
    from hf_unlearn.ui.views import remember

    labels = []
    for i in range(n):
        folder = session_folder(state, "hf-unlearn-test-")
        (folder / "per_class.png").write_bytes(b"png")
        shown = (f"Done: run {i}", "log", {"headers": ["a"], "data": [[1]]}, str(folder / "per_class.png"),
                 [str(folder / "run.zip"), str(folder / "report.md")], [(str(folder / "g" / "00.png"), "3 → 5")])
        labels.append(remember(state, f"run {i}", "unlearn", shown, None, folder))
    return labels


def test_an_entry_older_than_the_kept_results_loses_only_its_files():
    from hf_unlearn.ui.session_files import drop_session_files
    from hf_unlearn.ui.views import KEEP_RESULTS

    state: dict = {}
    try:
        _add(state, KEEP_RESULTS + 1)
        first, second = state["history"][0], state["history"][1]
        assert first["folder"] is None  # its folder was removed when the sixth run made its own
        assert first["shown"][:3] == ("Done: run 0", "log", {"headers": ["a"], "data": [[1]]})  # words and tables
        assert first["shown"][3:] == (None, [], [])  # the plot, the downloads and the gallery pointed into it
        assert Path(second["folder"]).is_dir() and second["shown"][3].startswith(second["folder"])
        assert all(Path(e["folder"]).is_dir() for e in state["history"][1:])
    finally:
        drop_session_files(state)


def test_the_history_lists_the_last_results_and_keeps_numbering(monkeypatch):
    from hf_unlearn.ui import views
    from hf_unlearn.ui.session_files import drop_session_files

    monkeypatch.setattr(views, "HISTORY_LIMIT", 3)
    state: dict = {}
    try:
        labels = _add(state, 5)
        assert views.history_choices(state) == labels[::-1][:3]
        assert labels[-1].startswith("#5 ") and len(set(labels)) == 5  # unique, even after entries dropped off
    finally:
        drop_session_files(state)


def test_a_page_reopens_a_result_older_than_the_kept_ones(page):
    """Opening the first of six runs used to fail: Gradio refused its zip and plots, whose folder had gone."""
    from hf_unlearn.ui.views import KEEP_RESULTS

    c = client(page.url)
    outs = [c.predict(api_name="/run", **NO_FILES, forget_kind="class", forget_classes=[str(i)], method="rbm",
                      epochs=1, with_retrain=False) for i in range(KEEP_RESULTS + 1)]
    first_label, last_label = outs[0][-1]["value"], outs[-1][-1]["value"]
    opened = c.predict(api_name="/open", choice=first_label)
    status, table, per_class, downloads, gallery = opened[0], opened[2], opened[4], opened[6], opened[7]
    assert status.startswith(outs[0][0]) and "forget class 0." in status
    assert f"Only the last {KEEP_RESULTS} results keep their model, plots and downloads" in status
    assert table == outs[0][2] and per_class is None and not downloads and not gallery
    recent = c.predict(api_name="/open", choice=last_label)  # a kept one comes back whole, files included
    assert recent[0] == outs[-1][0] and Path(recent[4]).is_file() and len(recent[7]) == 16
    assert "Only the last" not in recent[0]


def test_the_forget_gallery_is_files_in_the_run_folder(page):
    """The history keeps what each run showed while the page is open: paths into the run's folder, not 16 decoded
    images a run (0.44 MB) for as long as the page stays."""
    c = client(page.url)
    out = c.predict(api_name="/run", **NO_FILES, forget_kind="class", forget_classes=["4"], method="ft", epochs=1,
                    with_retrain=False)
    assert len(out[7]) == 16 and all(item["caption"].startswith("true 4: ") for item in out[7])
    kept = page.app.state_holder.session_data[c.session_hash].state_data
    (state,) = [v for v in kept.values() if isinstance(v, dict) and "history" in v]
    entry = state["history"][-1]
    gallery = entry["shown"][7]
    assert len(gallery) == 16
    assert all(isinstance(path, str) and path.startswith(entry["folder"]) and Path(path).is_file()
               for path, _ in gallery)
