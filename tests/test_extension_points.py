"""The extension points: a metric and a forget kind, each registered in one place, reach everything.

Nothing outside this file is edited for either toy: the metric registry feeds
the report JSON, the markdown table, the model card's model-index, the app's
metrics table and the ``evaluate`` module; the forget-kind registry feeds
``ForgetSpec``, the Python API, the CLI's flags and the app's form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import NO_FILES
from test_app import client, free_port

from hf_unlearn import ForgetSpec, UnlearnError, unlearn
from hf_unlearn.cli import main
from hf_unlearn.demo import DEMO_RECIPE
from hf_unlearn.fields import doc
from hf_unlearn.forget import ForgetKind, register_kind, unregister_kind
from hf_unlearn.metrics import CardEntry, EvalOutputs, Metric, register, unregister


def _forget_confidence(out: EvalOutputs) -> float:
    return float(100.0 * np.mean(out["forget"].true_prob))


def _agreement_with_retrain(out: EvalOutputs) -> float:
    return float(100.0 * np.mean(out["test"].predictions == out.reference["test"].predictions))


TOY = Metric("forget_confidence", "forget confidence", "mean true-label confidence on the forget set", "retrain",
             ("forget",), _forget_confidence, card=CardEntry("forget", "forget_confidence", "forget confidence"))
#: a metric that reads the Retrain reference's outputs next to the model's own
AGREEMENT = Metric("retrain_agreement", "agreement with Retrain",
                   "share of test rows predicted as Retrain predicts them", "higher", ("test", "reference"),
                   _agreement_with_retrain)


@pytest.fixture()
def toy_metrics():
    register(TOY)
    register(AGREEMENT)
    yield
    unregister(TOY.key)
    unregister(AGREEMENT.key)


@pytest.fixture(scope="module")
def demo_run(demo_assets):
    """One RBM run with a Retrain reference, made while the toy metrics are registered."""
    register(TOY)
    register(AGREEMENT)
    try:
        yield unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", "rbm", epochs=1, reference="retrain",
                      retrain_settings=DEMO_RECIPE)
    finally:
        unregister(TOY.key)
        unregister(AGREEMENT.key)


def test_a_registered_metric_is_in_the_report_json_and_the_markdown(demo_run, toy_metrics):
    report = json.loads(demo_run.report.to_json())
    expected = 100.0 * demo_run.evaluations["unlearned"].outputs["forget"].true_prob.mean()
    assert report["metrics"]["unlearned"]["forget_confidence"] == pytest.approx(expected)
    assert report["metrics"]["original"]["forget_confidence"] > report["metrics"]["retrain"]["forget_confidence"]
    header, _, *rows = demo_run.report.markdown().splitlines()
    assert "| forget confidence |" in header and "| agreement with Retrain |" in header
    row = next(r for r in rows if r.startswith("| rbm (unlearned)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[header.strip("|").split("|").index(" forget confidence ")] == f"{expected:.2f}"


def test_a_metric_can_read_the_retrain_reference(demo_run, demo_assets, toy_metrics):
    metrics = demo_run.report.metrics
    assert metrics["retrain"]["retrain_agreement"] == 100.0
    assert 0 < metrics["unlearned"]["retrain_agreement"] <= 100.0
    alone = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", "ft", epochs=1)  # no reference: not reported
    assert alone.report.metrics["unlearned"]["retrain_agreement"] is None
    assert "agreement with Retrain" not in alone.report.markdown()


def test_a_registered_metric_is_in_the_model_cards_model_index(demo_run, toy_metrics, tmp_path):
    from huggingface_hub import ModelCard

    from hf_unlearn.card import build_model_card

    build_model_card(demo_run.report, "alice/toy").save(tmp_path / "README.md")
    card = ModelCard.load(tmp_path / "README.md")
    entry = next(r for r in card.data.eval_results if r.metric_type == "forget_confidence")
    assert entry.dataset_split == "forget" and entry.metric_name == "forget confidence"
    assert entry.metric_value == pytest.approx(demo_run.report.metrics["unlearned"]["forget_confidence"], abs=1e-4)
    assert ("**forget confidence**: mean true-label confidence on the forget set (the closer to retrain's value, "
            "the better)." in card.text)


def test_a_registered_metric_is_in_the_evaluate_module(toy_metrics):
    import evaluate

    from hf_unlearn.metrics import EVALUATE_MODULE_PATH

    rng = np.random.default_rng(0)
    splits = ["forget"] * 40 + ["retain"] * 80 + ["test"] * 80
    refs = rng.integers(0, 3, len(splits))
    probs = rng.uniform(size=len(splits))
    out = evaluate.load(EVALUATE_MODULE_PATH).compute(predictions=refs, references=refs, true_probs=probs,
                                                      losses=rng.exponential(size=len(splits)), splits=splits)
    assert out["forget_confidence"] == pytest.approx(100 * probs[:40].mean())
    assert "retrain_agreement" not in out  # it needs a reference's outputs, which the module's rows do not carry


def test_a_registered_metric_is_in_the_apps_metrics_table(demo_assets, toy_metrics):
    from hf_unlearn.ui import build_app, queued

    app = queued(build_app())
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        out = client(f"http://127.0.0.1:{port}/").predict(api_name="/run", **NO_FILES,
                     method="ft",
                                                           epochs=1, with_retrain=True)
    finally:
        app.close()
    assert out[0].startswith("Done: ft"), out[0]
    headers, rows = out[2]["headers"], {r[0]: r for r in out[2]["data"]}
    # each header says which way is better; each edited row's cell also its difference from Retrain
    col = headers.index("forget confidence ≈R")
    value, gap = rows["ft (unlearned)"][col].split()
    assert float(value) == pytest.approx(out[3]["unlearned"]["forget_confidence"], abs=0.01)
    retrain = float(rows["retrain"][col])
    assert float(gap.strip("()")) == pytest.approx(float(value) - retrain, abs=0.06)
    assert float(rows["retrain"][headers.index("agreement with Retrain ↑")]) == 100.0


# ------------------------------------------------------------------ a toy forget kind: every k-th row


@dataclass(frozen=True)
class EveryFields:
    every: int = doc(0, "forget every k-th training row (k ≥ 2)")
    offset: int = doc(0, "the first row to forget")


def _check(f: EveryFields) -> None:
    if f.every < 2:
        raise UnlearnError(f"every must be at least 2 (forget every k-th row), got {f.every}")


EVERY = ForgetKind(name="every-kth", title="every k-th row", fields=EveryFields,
                   select=lambda f, train, _seed: np.arange(f.offset, len(train), f.every),
                   describe=lambda f, _seed: f"every {f.every}th row from row {f.offset}", check=_check)


@pytest.fixture()
def every_kth():
    register_kind(EVERY)
    yield EVERY
    unregister_kind(EVERY.name)


def test_a_registered_kind_works_from_the_python_api(every_kth, demo_assets, digits):
    n = len(digits["train"])
    result = unlearn(str(demo_assets[0]), str(demo_assets[1]), ForgetSpec("every-kth", every=5, offset=2), "ft",
                     epochs=1)
    assert result.data.forget_rows.tolist() == list(range(2, n, 5))
    assert result.report.forget["kind"] == "every-kth" and result.report.forget["n_forget"] == len(range(2, n, 5))
    assert result.report.forget["description"] == "every 5th row from row 2"
    assert len(result.data.test) == len(digits["test"])  # the default test rule: the whole test split
    inferred = unlearn(str(demo_assets[0]), str(demo_assets[1]), {"every": 7}, "ft", epochs=1)  # kind inferred
    assert inferred.data.forget_rows.tolist() == list(range(0, n, 7))


def test_a_registered_kind_has_a_generated_cli_flag(every_kth, demo_assets, tmp_path, capsys):
    out = tmp_path / "every"
    code = main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-every", "9",
                 "--method", "ft", "--epochs", "1", "--output", str(out), "--quiet"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "forget every 9th row from row 0 |" in printed.out
    report = json.loads((out / "report.json").read_text())
    assert report["forget"]["kind"] == "every-kth" and report["forget"]["every"] == 9


@pytest.mark.parametrize("args,fragment", [
    (["--forget-every", "1"], "every must be at least 2 (forget every k-th row), got 1"),
    (["--forget-every", "x"], "every-kth: every must be an int, got 'x'"),
    (["--forget-every", "3", "--forget-class", "3"], "give exactly one forget specification"),
])
def test_a_registered_kinds_bad_input_is_one_line(every_kth, demo_assets, tmp_path, capsys, args, fragment):
    code = main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), *args, "--epochs", "1",
                 "--output", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
    assert not (tmp_path / "out").exists()
    with pytest.raises(UnlearnError) as exc:
        ForgetSpec("every-kth", every=0)
    assert "\n" not in str(exc.value) and "every must be at least 2" in str(exc.value)


def test_a_registered_kind_is_in_the_apps_form(every_kth, demo_assets):
    from hf_unlearn.ui import build_app, queued

    app = queued(build_app())
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        c = client(f"http://127.0.0.1:{port}/")
        api = c.view_api(print_info=False, return_format="dict")["named_endpoints"]["/run"]
        params = {p["parameter_name"] for p in api["parameters"]}
        out = c.predict(api_name="/run", **NO_FILES,
                        forget_kind="every-kth", forget_every=4, method="ft",
                        epochs=1, with_retrain=False)
    finally:
        app.close()
    assert {"forget_every", "forget_offset"} <= params
    assert out[0].startswith("Done: ft, forget every 4th row from row 0."), out[0]
