"""Successive deletion requests: the ledger beside a checkpoint makes the next request forget the union, Retrain
excludes every request's rows, the newest request is measured apart, the ledger stays local, and a ledger is
refused against another version of the dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TOKEN

from hf_unlearn.cli import main
from hf_unlearn.demo import DEMO_RECIPE
from hf_unlearn.ledger import LEDGER_FILE, Ledger

RECIPE = [f"--retrain-set={k}={v}" for k, v in DEMO_RECIPE.items()]


def _run(model, data, out, *extra, method="rbm"):
    return main(["run", "--model", str(model), "--dataset", str(data), "--method", method, "--reference", "retrain",
                 *RECIPE, "--quiet", "--output", str(out), *extra])


def _report(folder):
    return json.loads((folder / "report.json").read_text())


@pytest.fixture(scope="module")
def requests(demo_assets, tmp_path_factory):
    """Request 1 forgets digit 3 and saves; request 2 forgets digit 5 from that checkpoint (its ledger beside it);
    and request 2 again with the ledger ignored, the way a tool without one would run it (with RBM, and with FT,
    which trains on D_r)."""
    root = tmp_path_factory.mktemp("ledger")
    model, data = demo_assets
    assert _run(model, data, root / "r1", "--forget-class", "3") == 0
    assert _run(root / "r1", data, root / "r2", "--forget-class", "5") == 0
    assert _run(root / "r1", data, root / "r2-alone", "--forget-class", "5", "--ledger", "none") == 0
    for name, extra in (("r2-ft", ()), ("r2-ft-alone", ("--ledger", "none"))):
        assert _run(root / "r1", data, root / name, "--forget-class", "5", *extra, method="ft") == 0
    return root


def test_the_second_request_keeps_the_first_forgotten(requests):
    r2 = _report(requests / "r2")
    per_class = r2["metrics"]["unlearned"]["per_class_test_acc"]
    assert per_class[3] <= 5 and per_class[5] <= 5, per_class
    assert r2["metrics"]["unlearned"]["forget_class_test_acc"] <= 5
    assert r2["forget"]["class_ids"] == [5] and r2["data"]["requests"] == 2


def test_the_second_requests_retrain_was_trained_without_both_digits(requests):
    r1, r2 = _report(requests / "r1"), _report(requests / "r2")
    n3, n_both = r1["data"]["n_forget"], r2["data"]["n_forget"]
    assert n_both > n3 and r2["data"]["n_forget_request"] == n_both - n3
    assert r2["data"]["n_retain"] == r2["data"]["n_train"] - n_both  # Retrain's training set
    retrain = r2["metrics"]["retrain"]["per_class_test_acc"]
    assert retrain[3] == 0.0 and retrain[5] == 0.0  # a model that never saw a digit never predicts it
    assert r2["metrics"]["retrain"]["ua"] == 100.0


def test_without_the_ledger_the_first_request_comes_back(requests):
    """The guard of the two tests above. Request 2 with the ledger ignored: Retrain saw digit 3 again (it is in
    D_r), so the gold standard is wrong and the run looks far from it; and a method that trains on D_r (FT)
    learns digit 3 back, which it does not with the ledger."""
    alone, served = _report(requests / "r2-alone"), _report(requests / "r2")
    assert alone["metrics"]["retrain"]["per_class_test_acc"][3] > 90
    assert alone["data"]["n_retain"] > served["data"]["n_retain"] and "requests" not in alone["data"]
    assert alone["avg_gap"]["unlearned"] > 10 * served["avg_gap"]["unlearned"]
    assert len(alone["lineage"]) == 1
    ft, ft_alone = _report(requests / "r2-ft"), _report(requests / "r2-ft-alone")
    assert ft["metrics"]["unlearned"]["per_class_test_acc"][3] <= 5
    assert ft_alone["metrics"]["unlearned"]["per_class_test_acc"][3] > 50


def test_the_newest_request_is_measured_apart_and_the_lineage_holds_digests_only(requests, digits):
    r1, r2 = _report(requests / "r1"), _report(requests / "r2")
    newest = r2["newest_request"]
    assert newest["n_forget"] == r2["data"]["n_forget_request"]
    # the untouched model knows digit 5 (it misses at most a few of its rows); the unlearned one forgot it all
    assert newest["metrics"]["unlearned"]["ua"] == 100.0 and newest["metrics"]["original"]["ua"] < 5
    lineage = r2["lineage"]
    assert [e["description"] for e in lineage] == ["class 3", "class 5"] and [e["method"] for e in lineage] == \
        ["rbm", "rbm"]
    assert lineage[0]["forget_ids_sha256"] == r1["forget"]["forget_ids_sha256"]
    assert lineage[0]["n_rows"] == r1["data"]["n_forget"] and "rows" not in lineage[0]
    assert lineage[-1]["forget_ids_sha256"] == r2["forget"]["forget_ids_sha256"]  # the report's own request
    ledger = Ledger.load(requests / "r2" / LEDGER_FILE)  # the rows live here, locally
    assert [len(r.rows) for r in ledger.requests] == [e["n_rows"] for e in lineage]
    labels = np.asarray(digits["train"]["label"])
    assert ledger.requests[0].rows == np.flatnonzero(labels == 3).tolist()
    assert ledger.requests[1].rows == np.flatnonzero(labels == 5).tolist()

    def lists(node):  # every list of numbers anywhere in the report
        if isinstance(node, dict):
            return [x for v in node.values() for x in lists(v)] + (["rows"] if "rows" in node else [])
        if isinstance(node, list):
            return [node] if node and all(isinstance(v, int) for v in node) else [x for v in node for x in lists(v)]
        return []

    found = lists(r2)
    assert "rows" not in found and not any(len(x) > 20 and x[:20] == ledger.requests[0].rows[:20] for x in found)


def test_a_model_that_served_requests_is_refused_without_its_ledger(requests, demo_assets, tmp_path, capsys):
    """A checkpoint copied without its ledger (or pulled from the Hub): its report's lineage says it served a
    request, so a new one must not silently put those rows back into D_r."""
    import shutil

    copy = tmp_path / "r1-copy"
    shutil.copytree(requests / "r1", copy)
    (copy / LEDGER_FILE).unlink()
    capsys.readouterr()
    assert _run(copy, demo_assets[1], tmp_path / "out", "--forget-class", "5") == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: this model has served 1 deletion request (its report's lineage), but no {LEDGER_FILE} "
                   "was found beside it: pass --ledger PATH (the ledger its run wrote) so that they stay forgotten, "
                   "or --ledger none to start a new lineage from it")
    assert not (tmp_path / "out").exists()
    assert _run(copy, demo_assets[1], tmp_path / "out", "--forget-class", "5", "--ledger",
                str(requests / "r1" / LEDGER_FILE)) == 0
    assert _report(tmp_path / "out")["data"]["requests"] == 2


def test_the_card_lists_the_requests_and_a_push_leaves_the_ledger_local(requests, hub):
    from huggingface_hub import ModelCard

    assert main(["push", str(requests / "r2"), "--repo", "alice/no-3-no-5", "--token", TOKEN]) == 0
    repo = hub.state.repos[("model", "alice/no-3-no-5")]
    files = set(repo.commits[repo.refs["main"]].files)
    assert "model.safetensors" in files and LEDGER_FILE not in files
    card = ModelCard.load("alice/no-3-no-5", token=TOKEN)
    assert "## Deletion requests served" in card.text and "| 2 | class 5 |" in card.text
    assert main(["push", str(requests / "r2"), "--repo", "alice/with-ledger", "--token", TOKEN,
                 "--push-ledger"]) == 0
    repo = hub.state.repos[("model", "alice/with-ledger")]
    assert LEDGER_FILE in repo.commits[repo.refs["main"]].files


def test_a_new_dataset_commit_between_requests_is_refused_in_one_line(published, tmp_path, capsys):
    from huggingface_hub import HfApi

    assert main(["run", "--model", "alice/tiny", "--dataset", "alice/digits", "--forget-class", "3", "--method",
                 "ft", "--epochs", "1", "--quiet", "--output", str(tmp_path / "r1"), "--token", TOKEN]) == 0
    first = json.loads((tmp_path / "r1" / LEDGER_FILE).read_text())["dataset"]["commit"]
    HfApi(token=TOKEN).upload_file(path_or_fileobj=b"# digits\n", path_in_repo="README.md", repo_id="alice/digits",
                                   repo_type="dataset")
    capsys.readouterr()
    code = main(["run", "--model", str(tmp_path / "r1"), "--dataset", "alice/digits", "--forget-class", "5",
                 "--method", "ft", "--epochs", "1", "--quiet", "--output", str(tmp_path / "r2"), "--token", TOKEN])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0, err
    assert err.startswith(f"error: the ledger '{tmp_path / 'r1' / LEDGER_FILE}' was written against alice/digits at "
                          f"commit {first[:12]}, but this run reads commit "), err
    assert f"pass --dataset-revision {first}" in err
    assert not (tmp_path / "r2").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # at the ledger's own commit the request runs
    assert main(["run", "--model", str(tmp_path / "r1"), "--dataset", "alice/digits", "--dataset-revision", first,
                 "--forget-class", "5", "--method", "ft", "--epochs", "1", "--quiet", "--output",
                 str(tmp_path / "r2"), "--token", TOKEN]) == 0
    r2 = _report(tmp_path / "r2")
    assert r2["data"]["requests"] == 2
    assert [e["dataset"] for e in r2["lineage"]] == [{"id": "alice/digits", "commit": first}] * 2
    assert r2["lineage"][0]["model"]["id"] == "alice/tiny"  # the base the lineage starts from


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "'ledger.json' is not JSON: give the file an earlier run (unlearning_ledger.json) wrote"),
    (json.dumps({"format": 7, "dataset": {}, "requests": []}), "is a ledger of format 7, not 1"),
    (json.dumps({"format": 1, "dataset": {}, "requests": [{"rows": [1]}]}), "its fields are not a ledger's"),
])
def test_a_bad_ledger_is_refused_in_one_line(demo_assets, tmp_path, capsys, content, message):
    (tmp_path / "ledger.json").write_text(content)
    code = main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "5",
                 "--ledger", str(tmp_path / "ledger.json"), "--quiet", "--output", str(tmp_path / "out")])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
