"""The Gradio app through gradio_client: demo and loopback-Hub runs, cancel, isolation, errors in the page."""

from __future__ import annotations

import html
import json
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import NO_FILES, TOKEN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(demo_assets):
    from hf_unlearn.ui import build_app, queued

    app = queued(build_app())
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def run(url, **kw):
    args = {**NO_FILES, "method": "ft", "epochs": 1, "with_retrain": False}
    args.update(kw)
    return client(url).predict(api_name="/run", **args)


def table(out) -> dict[str, list]:
    return {row[0]: row for row in out[2]["data"]}


def number(cell: str) -> float:
    """A table cell's value ("12.34 (+1.2)": the value, then its difference from Retrain)."""
    return float(str(cell).split()[0])


def error_message(shown: str) -> str:
    """The one line of an error box (it says "Error:" in a red box), or fail."""
    assert 'class="hfu-error"' in shown and "<b>Error:</b> " in shown, shown
    return html.unescape(shown.split("<b>Error:</b> ", 1)[1].rsplit("</div>", 1)[0])


def test_demo_run_returns_metrics_with_retrain_and_avg_gap(app_url):
    out = run(app_url, method="rbm", epochs=2, with_retrain=True)
    status, log, metrics = out[0], out[1], out[3]
    assert status.startswith("Done: rbm") and "rbm: epoch 2/2" in log
    rows = table(out)
    assert {"original", "rbm (unlearned)", "retrain"} <= set(rows)
    assert number(rows["retrain"][-1]) == 0.0
    assert 0 <= number(rows["rbm (unlearned)"][-1]) < number(rows["original"][-1])
    # each edited row says how far it is from Retrain: forget acc (≈R) of the original is 100 − Retrain's
    forget_acc = out[2]["headers"].index("forget acc ≈R")
    assert rows["original"][forget_acc].endswith(f"({100 - metrics['retrain']['forget_acc']:+.1f})")
    assert metrics["retrain"]["forget_class_test_acc"] <= 5
    assert out[4].endswith("per_class.png") and out[5].endswith("mia.png")
    names = [Path(f).name for f in out[6]]
    assert names == ["hf-unlearn-rbm-class-3.zip", "report.md", "report.json", "per_class.png", "mia.png"]
    assert len(out[7]) == 16  # forget-set image grid
    assert "Avg.Gap" in out[8] and out[9] == ""  # the note above the table; the progress display is gone


def test_loopback_hub_model_runs_through_the_app(app_url, hub, demo_assets):
    from huggingface_hub import HfApi

    api = HfApi(token=TOKEN)
    api.create_repo("alice/app-model")
    api.upload_folder(folder_path=str(demo_assets[0]), repo_id="alice/app-model")
    api.create_repo("alice/app-data", repo_type="dataset")
    api.upload_folder(folder_path=str(demo_assets[1]), repo_id="alice/app-data", repo_type="dataset")
    out = run(app_url, model="alice/app-model", dataset="alice/app-data", forget_classes=["7"])
    assert out[0].startswith("Done: ft"), out[0]
    assert out[3]["original"]["ta"] > 90 and 0 <= out[3]["unlearned"]["ua"] <= 100


def _job_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hf-unlearn-job" and t.is_alive()]


def test_cancel_stops_the_run_within_5_seconds(app_url):
    job = client(app_url).submit(api_name="/run", **NO_FILES, method="retrain", epochs=500,
                                 with_retrain=False)
    deadline = time.time() + 60
    while not _job_threads() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    assert _job_threads(), "the job never started"
    t0 = time.time()
    job.cancel()
    while _job_threads() and time.time() - t0 < 5:
        time.sleep(0.05)
    stopped_after = time.time() - t0
    assert not _job_threads(), "the worker was still running 5 s after cancel"
    assert stopped_after < 5


def test_cancel_button_endpoint_stops_a_run(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    job = c.submit(api_name="/run", **NO_FILES,
                   method="retrain", epochs=500, with_retrain=False)
    deadline = time.time() + 60
    while not _job_threads() and time.time() < deadline:
        time.sleep(0.1)
    job.cancel()
    t0 = time.time()
    while _job_threads() and time.time() - t0 < 5:
        time.sleep(0.05)
    assert not _job_threads()


def test_two_clients_at_once_each_get_their_own_results(app_url):
    results = {}

    def go(cls):
        results[cls] = run(app_url, forget_classes=[cls])

    threads = [threading.Thread(target=go, args=(c,)) for c in ("2", "6")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for cls in ("2", "6"):
        status = results[cls][0]
        assert f"forget class {cls}." in status, status
        per_class_after = results[cls][3]["unlearned"]["per_class_test_acc"]
        assert per_class_after is not None
    assert results["2"][3] != results["6"][3]


@pytest.mark.parametrize("kwargs,fragment", [
    ({"model": "alice/does-not-exist", "dataset": "alice/nothing"}, "was not found"),
    ({"forget_classes": ["cat"]}, "class 'cat' is not in the label set; valid classes: 0, 1"),
    ({"forget_kind": "indices", "forget_indices": ""}, "the index list is empty"),
    ({"forget_kind": "indices", "forget_indices": "1, x"}, "forget index 'x' is not an integer"),
    ({"forget_classes": []}, "choose at least one class"),
])
def test_bad_input_shows_a_message_in_the_page(app_url, hub, kwargs, fragment):
    out = run(app_url, **kwargs)
    message = error_message(out[0])
    assert fragment in message, message
    assert "Traceback" not in out[0] and "\n" not in out[0]


def test_push_without_a_run_explains_what_to_do(app_url):
    msg = client(app_url).predict(api_name="/push", hub_token="", repo_id="alice/x", private_repo=False,
                                  open_pr=False)
    assert "there is no result on this page to push: run an unlearning job" in msg


def test_a_second_run_with_another_method_reads_the_reference_from_the_cache(app_url):
    c = client(app_url)
    request = dict(**NO_FILES, forget_classes=["8"], seed=5, epochs=1, with_retrain=True)
    first = c.predict(api_name="/run", method="rbm", **request)
    second = c.predict(api_name="/run", method="ft", **request)
    assert "trained for this run" in first[0] and "read from the reference cache" in second[0], (first[0], second[0])
    assert first[3]["retrain"] == second[3]["retrain"]
    assert "**Verdict** (seed 5): forgot class 8" in first[0]
    listed = [label for label, _ in second[-1]["choices"]]  # the session's history, newest first
    assert second[-1]["value"] == listed[0] and listed[0].startswith("#2 ft, forget class 8, seed 5: Avg.Gap ")
    assert listed[1] == first[-1]["value"] and listed[1].startswith("#1 rbm, forget class 8, seed 5: Avg.Gap ")
    # an earlier run can be opened again: its status and table come back
    opened = c.predict(api_name="/open", choice=listed[1])
    assert opened[0] == first[0] and opened[2] == first[2]


def test_compare_runs_several_methods_and_seeds_in_one_view(app_url):
    c = client(app_url)
    out = c.predict(api_name="/compare", methods=["rbm", "ft"], **NO_FILES,
                    epochs=1, seeds="7,8",
                    with_retrain=True)  # seeds no other test uses: each Retrain is trained here
    _, status, log, table, pareto, verdicts, files, history = out
    assert status.startswith("Done: rbm, ft; forget class 3; seeds 7, 8"), status
    # every comparison runs 'none' too: 3 methods × 2 seeds
    assert "[5/6 ft, seed 8]" in log and "[1/6 rbm, seed 7] retrain" in log and "[4/6 rbm, seed 8] retrain" in log
    assert "[2/6 ft, seed 7] retrain" not in log  # the second method shares the seed's Retrain
    rows = {row[0]: row for row in table["data"]}
    assert list(rows) == ["rbm", "ft", "none (untouched)", "retrain (gold standard)"]
    assert all(" ± " in cell for cell in rows["rbm"][1:])
    assert pareto.endswith("pareto.png") and "**rbm**:" in verdicts and "**ft**:" in verdicts
    assert sorted(Path(f).name for f in files) == ["comparison.json", "comparison.md", "pareto.png"]
    assert history["value"].startswith("#1 compare rbm, ft, forget class 3, seeds 7, 8")
    opened = c.predict(api_name="/open", choice=history["value"])  # the comparison can be opened again
    assert status in opened and verdicts in opened
    bad = c.predict(api_name="/compare", methods=[], **NO_FILES, with_retrain=True)
    assert error_message(bad[1]) == "choose at least one method to compare"


def test_the_app_offers_stored_tuned_settings_beside_the_defaults_and_runs_with_them(app_url, demo_assets):
    from hf_unlearn.config import RunConfig
    from hf_unlearn.tuning import MethodTuning, Tuning, remember, store_key
    from hf_unlearn.tuning import _store_path as store_path
    from hf_unlearn.ui.tuned import offer

    config = RunConfig.from_keywords(model=str(demo_assets[0]), dataset=str(demo_assets[1]),
                                     forget={"fraction": 0.1}, method="ft")
    tuning = Tuning(request={"kind": "random", "description": "random 10.0% (seed 0)", "n_forget": 144},
                    proxies=[{"description": "draw 1"}, {"description": "draw 2"}], sources={}, seeds=[0],
                    methods={"ft": MethodTuning("ft", {"epochs": 2, "lr": 0.002}, 1.2, [1.1, 1.3], 1.74, 1.98,
                                                trials=40, none_proxy_avg_gaps=[1.97, 1.99])})
    remember(config, tuning)
    try:
        form = {"model": "", "dataset": "", "method": "ft", "forget_kind": "random"}
        text = offer(form)
        assert text.startswith("**Tuned settings for ft** (from the tuned-settings cache; for random 10.0% (seed 0)"
                               "): tuned on 2 proxy requests, 40 trials: proxy Avg.Gap 1.20 (defaults 1.74; "
                               "untouched 1.98)."), text
        assert "| epochs | 5 | 2 |" in text and "| lr | 0.01 | 0.002 |" in text  # the defaults beside them
        assert offer({**form, "forget_kind": "class"}).startswith("No tuned settings for **ft**")
        out = run(app_url, forget_kind="random", forget_fraction=0.1, epochs=0)
        assert "**Settings:** ft's tuned settings (the tuned-settings cache): tuned on 2 proxy requests" in out[0]
        report = json.loads(Path(next(f for f in out[6] if f.endswith("report.json"))).read_text())
        assert report["settings"]["epochs"] == 2 and report["settings"]["lr"] == 0.002
        unticked = run(app_url, forget_kind="random", forget_fraction=0.1, epochs=0, use_tuned=False)
        assert "**Settings:**" not in unticked[0]
    finally:
        store_path(store_key(config, "ft")).unlink()


def test_the_audit_view_scores_the_method_and_push_sends_the_audited_checkpoint(app_url, hub):
    """N = 8 for FT on the preset class (the demo's recipe; its references shared with any other audit of the
    session); the status states F next to its ceiling, the files come back, and Push sends seed 0's model with
    the audit's scores in the card and its evidence beside it, in one commit."""
    from huggingface_hub import ModelCard

    c = client(app_url)
    out = c.predict(api_name="/audit", n_models=8, **NO_FILES, method="ft", epochs=1,
                    with_retrain=True)
    _, status, log, figure, scores, files, history = out
    assert status.startswith("Done: audit of **ft**, forget class 3: 8 unlearned runs"), status
    assert "### Forgetting quality F = " in status and "(ceiling at N = 8: " in status
    assert "F = 1 means no attack tells the unlearned model from retraining" in status
    assert "[16/16 ft, seed 7] ft: epoch 1/1" in log and "[1/16 retrain, seed 0] reference ready" in log
    assert log.count("[16/16 ft, seed 7]") == 1  # one line a finished run
    assert figure.endswith("epsilon_hist.png")
    assert [row[0] for row in scores["data"]] == ["Forgetting quality F", "Ceiling of F", "Final score"]
    assert sorted(Path(f).name for f in files) == ["audit.json", "audit.md", "audit_confidences.npz",
                                                   "epsilon_hist.png"]
    assert history["value"].startswith("#1 audit ft, forget class 3, N = 8: F ")
    record = json.loads(Path(next(f for f in files if f.endswith("audit.json"))).read_text())
    assert record["n_models"] == 8 and record["method"] == "ft"

    pushed = c.predict(api_name="/push", hub_token=TOKEN, repo_id="alice/audited", private_repo=False,
                       open_pr=False)
    assert pushed.startswith("Pushed:"), pushed
    repo = hub.state.repos[("model", "alice/audited")]
    assert {"model.safetensors", "README.md", "unlearning_report.json", "audit.json", "audit_confidences.npz",
            "epsilon_hist.png"} <= set(repo.commits[repo.refs["main"]].files)
    assert len(repo.commits) == 2
    card = ModelCard.load("alice/audited", token=TOKEN)
    names = {r.metric_type: r.metric_name for r in card.data.eval_results}
    assert names["forgetting_quality"] == "Forgetting quality F (N=8 models of each kind)"
    assert "## Forgetting audit (8 unlearned and 8 retrained models)" in card.text

    bad = c.predict(api_name="/audit", n_models=8, **NO_FILES, method="retrain",
                    with_retrain=True)
    assert error_message(bad[1]).startswith("auditing Retrain against itself measures nothing"), bad[1]


@pytest.mark.parametrize("method", ["rbm", "minnorm-og", "ft", "ga", "rl", "neggrad+", "l1-sparse", "salun"])
def test_each_methods_app_defaults_forget_the_demo_digit_or_the_form_says_what_they_do(app_url, method):
    """The seed methods forget digit 3 at the app's defaults; for every other method whose defaults do not (or
    forget by breaking the model), the form's note beside the method says so, and the run bears it out."""
    from hf_unlearn.ui.views import METHOD_NOTES, method_advice

    out = run(app_url, method=method, epochs=0, use_tuned=False)  # the method's own defaults, as the form shows
    after = out[3]["unlearned"]
    if method in ("rbm", "minnorm-og"):
        assert after["forget_class_test_acc"] <= 5 and method not in METHOD_NOTES, after
        return
    note = METHOD_NOTES.get(method)
    if after["forget_class_test_acc"] > 5:
        assert note and "does not forget" in note and "97 %" in note, (method, after["forget_class_test_acc"])
        assert after["forget_class_test_acc"] > 90
    else:
        assert note and "break the model" in note, (method, after)
        assert after["ta"] < 50  # what the note says: the other digits' accuracy collapses
    assert note in method_advice(method)


def test_cancel_with_nothing_running_leaves_the_view_as_it_is(app_url):
    shown = client(app_url).predict(api_name="/cancel")  # the page says so in a toast (test_browser.py)
    assert not shown or "Cancel" not in str(shown)


def test_a_model_typed_beside_the_demo_dataset_is_told_what_to_give(app_url):
    out = run(app_url, model="alice/some-model")  # the dataset box still holds the demo preset
    assert error_message(out[0]).startswith("the dataset box still holds the demo's digits: give the dataset")


def test_gradio_fills_the_session_and_the_login_token_of_the_handlers():
    """Gradio passes a session (Cancel finds its job by it) and a Space's login token (Push uses it) by the
    parameters' annotations: they must be the classes, not this module's unevaluated strings."""
    import gradio as gr

    from hf_unlearn.ui import build_app

    app = build_app()
    handlers = {fn.fn.__name__: fn.fn for fn in app.fns.values() if getattr(fn, "fn", None) is not None}
    assert handlers["on_push"].__annotations__["oauth_token"] == (gr.OAuthToken | None)
    for name in ("on_run", "on_compare", "on_audit", "on_cancel"):
        assert handlers[name].__annotations__["request"] is gr.Request, name


def test_inspect_dataset_keeps_the_chosen_classes_and_answers_beside_its_button(app_url):
    picked, columns, info, message = client(app_url).predict(["3", "7"], model="", dataset="", revision="",
                                                             dataset_config="", dataset_revision="",
                                                             train_split="train", test_split="", image_column="",
                                                             label_column="", retrain_base="",
                                                             api_name="/on_inspect")
    assert picked["value"] == ["3", "7"] and len(picked["choices"]) == 10  # not reset to the first class
    assert info["classes"] == 10 and "Dataset has 10 classes" in message and "stay 3, 7" in message


def values(out) -> list:
    """What each output of a light event holds ("an update" of a value comes as a dict)."""
    return [o.get("value") if isinstance(o, dict) and "__type__" in o else o for o in out]


def test_choosing_a_model_fills_or_clears_what_goes_with_it(app_url):
    from hf_unlearn.presets import PRESETS
    from hf_unlearn.ui.form import DEMO

    c = client(app_url)
    preset = next(p for p in PRESETS if p.dataset_config)
    out = values(c.predict(model=preset.label, dataset=DEMO, api_name="/on_model"))
    assert out[0] == preset.dataset and preset.dataset_config in out and preset.label_column in out
    assert preset.base_model in out and "to download" in out[-1]
    back = values(c.predict(model=DEMO, dataset=preset.dataset, api_name="/on_model"))
    assert back[0] == DEMO and preset.label_column not in back and preset.base_model not in back
    typed = values(c.predict(model="alice/own-model", dataset=DEMO, api_name="/on_model"))
    assert typed[0] == "" and "Give the dataset this model was trained on" in typed[-1]


def test_the_boxes_beside_the_method_and_its_table_hold_one_value(app_url):
    from hf_unlearn.ui.form import keywords_from_form
    from hf_unlearn.ui.views import settings_rows

    c = client(app_url)
    table, epochs, batch, note = values(c.predict(method="ft", api_name="/on_method"))
    assert epochs == 5 and batch == 64 and "does not forget" in note
    edited = c.predict(rows={"headers": ["setting", "value", "meaning"], "data": settings_rows("ft")},
                       param_1=9, param_2=64, api_name="/on_shortcut")
    assert dict((r[0], r[1]) for r in edited["data"])["epochs"] == "9"
    # the run reads one value: the table's; a box that says the same adds nothing, a different one wins
    rows = settings_rows("ft")

    def form(**kw):
        return keywords_from_form({"forget_kind": "class", "forget_classes": ["3"], **kw})

    same = form(method="ft", settings=rows, epochs=5, batch_size=64)
    assert "epochs" not in same and "batch_size" not in same
    api = form(method="retrain", settings=settings_rows("rbm"), epochs=5)
    assert "epochs" not in api  # RBM's table and its 5 are not retrain's settings: retrain keeps its own
    assert form(method="ft", settings=rows, epochs=2)["epochs"] == 2
    assert "batch_size" not in form(method="none", settings=settings_rows("none"), batch_size=32)  # it has none


def test_the_note_above_the_table_warns_when_the_edit_is_worse_than_no_edit():
    from types import SimpleNamespace

    from hf_unlearn.ui.views import metrics_note

    worse = metrics_note(SimpleNamespace(method="rbm<b>", avg_gap={"unlearned": 2.23, "original": 1.98}))
    assert 'class="hfu-warning"' in worse and "This edit made things worse" in worse and "(2.23)" in worse
    assert "rbm&lt;b&gt;" in worse and "rbm<b>" not in worse  # a method name is text, never markup
    better = metrics_note(SimpleNamespace(method="rbm", avg_gap={"unlearned": 0.15, "original": 50.08}))
    assert "hfu-warning" not in better and "**Avg.Gap 0.15** for rbm, against **50.08**" in better
    assert "tick *also compute the Retrain reference*" in metrics_note(SimpleNamespace(method="rbm", avg_gap=None))
