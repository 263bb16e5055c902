"""The forgetting-quality audit on the digits demo: its files, its score recomputed from them, the registry, the
report and card, and its errors. (Two processes against one: ``test_distributed.py``; the score's arithmetic:
``test_forgetting_quality.py``.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hf_unlearn import forgetting_quality as fq
from hf_unlearn.errors import UnlearnError

#: a short recipe: the test is about the audit's bookkeeping, not about how well the demo forgets
RECIPE = {"epochs": 3}
N = 8


@pytest.fixture(scope="module")
def audited(demo_assets, tmp_path_factory):
    from hf_unlearn import audit

    out = tmp_path_factory.mktemp("audit") / "rbm"
    events = []
    result = audit(str(demo_assets[0]), str(demo_assets[1]), 3, "rbm", n_models=N, epochs=2,
                   retrain_settings=RECIPE, output_dir=out, progress=events.append)
    return result, out, events


def test_the_audit_writes_its_files_and_the_audited_checkpoint(audited):
    result, out, _ = audited
    names = {p.name for p in out.iterdir()}
    assert {"audit.json", "audit.md", "audit_confidences.npz", "epsilon_hist.png", "model.safetensors",
            "config.json", "report.json", "unlearning_mask.safetensors"} <= names
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # written whole, nothing left over
    record = json.loads((out / "audit.json").read_text())
    n_forget = result.report.data["n_forget"]
    assert record["n_models"] == N and record["delta"] == 1e-5 and record["method"] == "rbm"
    assert len(record["epsilon"]) == n_forget and record["versions"]["torch"]
    assert [m["seed"] for m in record["per_model"]] == list(range(N))
    assert record["measurable_epsilon"] == pytest.approx(np.log(N - 1))
    assert "F = 1 means no attack tells the unlearned model from retraining" in record["meaning"]


def test_the_score_is_recomputed_from_the_confidences_file_alone(audited):
    _, out, _ = audited
    record = json.loads((out / "audit.json").read_text())
    z = np.load(out / "audit_confidences.npz")
    assert set(z.files) == {"unlearned", "retrained", "ra_unlearned", "ra_retrained", "ta_unlearned",
                            "ta_retrained", "seeds", "delta"}  # no pixels, no labels
    assert z["unlearned"].shape == z["retrained"].shape == (N, len(record["epsilon"]))
    assert fq.epsilons(z["unlearned"], z["retrained"]).tolist() == record["epsilon"]
    f = fq.forget_score(z["unlearned"], z["retrained"])
    assert record["metrics"]["forget_quality"] == f
    assert record["metrics"]["forget_quality_ceiling"] == fq.ceiling(z["retrained"])
    final = fq.final_score(f, z["ra_unlearned"].mean(), z["ra_retrained"].mean(), z["ta_unlearned"].mean(),
                           z["ta_retrained"].mean())
    assert record["metrics"]["final_score"] == pytest.approx(final)


def test_each_model_is_its_seeds_run_and_the_references_are_the_cached_ones(audited, demo_assets):
    """Row s of the unlearned matrix is seed s's ordinary run; row s of the retrained one is seed s's ordinary
    (cached) Retrain reference, so an audit reuses and feeds the cache every other command uses."""
    from hf_unlearn import unlearn

    result, _, _ = audited
    single = unlearn(str(demo_assets[0]), str(demo_assets[1]), 3, "rbm", epochs=2, reference="retrain",
                     retrain_settings=RECIPE, seed=5)
    assert single.report.retrain["cached"]  # the audit stored seed 5's reference
    assert np.array_equal(single.forget_confidence, result.outputs.unlearned[5])
    assert single.report.metrics["unlearned"]["ra"] == result.outputs.ra_unlearned[5]
    assert single.report.metrics["retrain"]["ta"] == result.outputs.ta_retrained[5]
    assert result.report.seeds == list(range(N)) and len(result.report.per_seed) == N
    assert result.report.metrics_std["unlearned"]["ta"] is not None  # the usual metrics' spread over the N runs


def test_progress_runs_over_the_2n_runs(audited):
    _, _, all_events = audited
    assert [e for e in all_events if "task" not in e] == [{"stage": "preparing data"}]  # before any run
    events = [e for e in all_events if "task" in e]
    tasks = {e["task"] for e in events}
    assert tasks == set(range(2 * N)) and {e["tasks"] for e in events} == {2 * N}
    assert {e["task_name"] for e in events if e["task"] == 3} == {"rbm, seed 1"}


def test_the_scores_are_registry_metrics_in_the_report_and_the_card(audited):
    from hf_unlearn.card import build_model_card
    from hf_unlearn.metrics import audit_metrics, table_metrics
    from hf_unlearn.report import UnlearnReport

    result, out, _ = audited
    keys = [m.key for m in audit_metrics()]
    assert keys == ["forget_quality", "forget_quality_ceiling", "final_score"]
    assert not set(keys) & {m.key for m in table_metrics()}  # not a per-model column
    assert "forget_quality" not in result.report.metrics["unlearned"]
    report = UnlearnReport.load(out)
    assert report.audit["n_models"] == N and report.audit["metrics"] == result.metrics
    card = build_model_card(report, "alice/audited")
    results = {r.metric_type: r for r in card.data.eval_results}
    assert results["forgetting_quality"].metric_value == round(result.metrics["forget_quality"], 4)
    assert results["forgetting_quality"].metric_name == f"Forgetting quality F (N={N} models of each kind)"
    ceiling_name = f"Ceiling of F at N={N} (two halves of the retrained models)"
    assert results["forgetting_quality_ceiling"].metric_name == ceiling_name
    assert "unlearning_final_score" in results and "accuracy" in {r.metric_type for r in card.data.eval_results}
    text = str(card)
    assert f"## Forgetting audit ({N} unlearned and {N} retrained models)" in text
    assert "F = 0 means every forget example is exposed" in text and "ceiling" in text
    assert "forgetting audit: Forgetting quality F =" in report.summary()


def test_an_audit_metric_registered_by_a_user_is_computed_with_the_others(audited, demo_assets):
    """The audit computes whatever the registry's audit scope holds: adding one is one registration."""
    from hf_unlearn.audit import run_audit
    from hf_unlearn.config import RunConfig
    from hf_unlearn.metrics import Metric, register, unregister

    register(Metric("median_epsilon", "median ε", "the median forget example's ε", "lower", (),
                    lambda a: float(np.median(a.epsilons)), table=False, scope="audit"))
    try:
        config = RunConfig.from_keywords(model=str(demo_assets[0]), dataset=str(demo_assets[1]), forget=3,
                                         method="rbm", epochs=2, reference="retrain", retrain_settings=RECIPE)
        result = run_audit(config, N)  # the fixture's audit cached every reference: 8 short runs
    finally:
        unregister("median_epsilon")
    assert result.metrics["median_epsilon"] == float(np.median(result.outputs.epsilons))
    assert result.cached_references == N


@pytest.mark.parametrize(("keywords", "message"), [
    ({"n_models": 4}, "an audit needs at least 8 models of each kind"),
    ({"n_models": 8, "method": "retrain"}, "auditing Retrain against itself measures nothing"),
    ({"n_models": 8, "seeds": (0, 1)}, "an audit's seeds are 0..n_models−1"),
])
def test_bad_audits_are_refused_before_any_work(demo_assets, keywords, message):
    from hf_unlearn import audit

    keywords = {"method": "ft", **keywords}
    with pytest.raises(UnlearnError, match=message.replace("(", r"\(").replace(")", r"\)")):
        audit(str(demo_assets[0]), str(demo_assets[1]), 3, keywords.pop("method"), **keywords)


def test_the_audit_command_refuses_seeds_and_a_full_folder_in_one_line(demo_assets, tmp_path, capsys):
    from hf_unlearn.cli import main

    base = ["audit", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
            "--method", "ft", "--n-models", "8"]
    assert main([*base, "--seeds", "0,1", "--output", str(tmp_path / "a")]) == 2
    assert "error: an audit's seeds are 0..N−1: drop --seeds and set --n-models" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main([*base, "--output", str(tmp_path / "full")]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_the_audit_command_runs_a_tuned_settings_file_under_the_users_own_flags(demo_assets, tmp_path, capsys):
    """--settings FILE: the method's tuned settings, under --epochs; the report records the tuning."""
    from hf_unlearn.cli import main
    from hf_unlearn.report import UnlearnReport
    from hf_unlearn.tuning import MethodTuning, Tuning

    tuned = Tuning(request={"kind": "class", "description": "class 5", "n_forget": 180},
                   proxies=[{"description": "class 7"}], sources={}, seeds=[0],
                   methods={"rbm": MethodTuning("rbm", {"epochs": 4, "lr": 0.02}, 0.5, [0.5, 0.5], 1.0, 40.0,
                                                trials=10, none_proxy_avg_gaps=[40.0, 40.0],
                                                validation_avg_gaps=[0.5, 0.6], none_validation_avg_gaps=[40.0, 40.0])})
    tuned.save(tmp_path / "tuned.json")
    out = tmp_path / "audited"
    code = main(["audit", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--settings", str(tmp_path / "tuned.json"), "--epochs", "2", "--n-models", "8",
                 "--retrain-set", "epochs=3", "--quiet", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    report = UnlearnReport.load(out)
    assert report.method == "rbm" and report.settings["epochs"] == 2 and report.settings["lr"] == 0.02
    assert report.settings["tuned"]["for"] == "rbm" and report.audit["n_models"] == N


def test_cancel_stops_an_audit_between_its_runs_and_nothing_is_scored(demo_assets):
    """The app's Cancel sets the job's event: the audit stops at the next training step, with no result."""
    import threading

    from hf_unlearn.audit import run_audit
    from hf_unlearn.config import RunConfig
    from hf_unlearn.errors import Cancelled

    cancel = threading.Event()
    seen = []

    def progress(event):
        if "task" not in event:  # "preparing data", before the runs
            return
        seen.append(event["task"])
        if event["task"] == 2:  # seed 1's reference is ready: stop before seed 1's run trains
            cancel.set()

    config = RunConfig.from_keywords(model=str(demo_assets[0]), dataset=str(demo_assets[1]), forget=3,
                                     method="rbm", epochs=2, reference="retrain", retrain_settings=RECIPE)
    with pytest.raises(Cancelled):
        run_audit(config, N, progress=progress, cancel=cancel)
    assert max(seen) <= 3  # nothing after seed 1's run began
