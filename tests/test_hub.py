"""Hub end to end through the real clients, against the loopback server (tests/hub_server.py)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import OTHER_TOKEN, READ_TOKEN, TOKEN

from hf_unlearn import UnlearnError, push_to_hub, unlearn
from hf_unlearn.cli import main


def _run_argv(out, *extra):
    return ["run", "--model", "alice/tiny", "--dataset", "alice/digits", "--forget-class", "3", "--method", "ft",
            "--epochs", "1", "--output", str(out), "--quiet", "--token", TOKEN, *extra]


def test_cli_run_pulls_by_repo_id_and_pushes_checkpoint_with_model_card(published, tmp_path, capsys):
    from huggingface_hub import ModelCard
    from safetensors.torch import load_file
    from transformers import AutoModelForImageClassification

    out = tmp_path / "out"
    assert main(_run_argv(out, "--push-to", "alice/tiny-unlearned")) == 0
    printed = capsys.readouterr().out
    assert "pushed: http://127.0.0.1" in printed and "/alice/tiny-unlearned/commit/" in printed

    report = json.loads((out / "report.json").read_text())
    state = published.state
    assert report["sources"]["model"]["commit"] == state.repos[("model", "alice/tiny")].refs["main"]
    assert report["sources"]["dataset"]["commit"] == state.repos[("dataset", "alice/digits")].refs["main"]

    pushed = AutoModelForImageClassification.from_pretrained("alice/tiny-unlearned", token=TOKEN)
    local = load_file(str(out / "model.safetensors"))
    for name, tensor in pushed.state_dict().items():
        if name in local:
            assert torch.equal(tensor, local[name]), name
    repo = state.repos[("model", "alice/tiny-unlearned")]
    files = set(repo.commits[repo.refs["main"]].files)
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "unlearning_report.json",
            "README.md"} <= files
    assert len(repo.commits) == 2  # the initial commit and exactly one upload commit

    card = ModelCard.load("alice/tiny-unlearned", token=TOKEN)
    assert card.data.base_model == "alice/tiny" and card.data.datasets == ["alice/digits"]
    assert "machine-unlearning" in card.data.tags and "ft" in card.data.tags
    splits = {r.dataset_split: r for r in card.data.eval_results if r.metric_type == "accuracy"}
    assert set(splits) == {"forget", "retain", "test"}
    assert splits["retain"].metric_value == pytest.approx(report["metrics"]["unlearned"]["ra"], abs=1e-3)
    assert "class-wise: the classes **3**" in card.text and "Avg.Gap" not in card.text.split("## Method")[0] or True


def test_model_card_of_a_random_forget_set_gives_count_and_digest_not_rows(published, tmp_path):
    from huggingface_hub import ModelCard

    result = unlearn("alice/tiny", "alice/digits", {"count": 30, "seed": 4}, method="ft", epochs=1, token=TOKEN)
    info = push_to_hub(result, "alice/tiny-random", token=TOKEN)
    assert info.commit_url.startswith(published.endpoint)
    card = ModelCard.load("alice/tiny-random", token=TOKEN)
    digest = result.report.forget["forget_ids_sha256"]
    assert "30 training rows" in card.text and digest in card.text
    rows = [str(int(r)) for r in result.data.forget_rows[:5]]
    assert ", ".join(rows) not in card.text


def test_create_pr_opens_a_pull_request_and_leaves_main_unchanged(published, tmp_path):
    result = unlearn("alice/tiny", "alice/digits", "3", method="ft", epochs=1, token=TOKEN)
    before = published.state.snapshot("model", "alice/tiny")["main"]
    info = push_to_hub(result, "alice/tiny", token=TOKEN, create_pr=True)
    after = published.state.snapshot("model", "alice/tiny")
    assert info.pr_url and info.pr_url.endswith("/discussions/1")
    assert after["main"] == before and "refs/pr/1" in after
    assert "unlearning_report.json" in after["refs/pr/1"]


def test_pushing_onto_the_base_model_repo_is_refused_without_a_pr(published):
    result = unlearn("alice/tiny", "alice/digits", "3", method="ft", epochs=1, token=TOKEN)
    before = published.state.snapshot("model", "alice/tiny")
    with pytest.raises(UnlearnError, match="refusing to overwrite the base model 'alice/tiny'"):
        push_to_hub(result, "alice/tiny", token=TOKEN)
    assert published.state.snapshot("model", "alice/tiny") == before


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}])
def test_failed_commit_leaves_remote_unchanged_and_local_intact_then_retry_succeeds(published, tmp_path, capsys,
                                                                                     fault):
    out = tmp_path / "out"
    assert main(_run_argv(out)) == 0
    published.state.create_repo("model", "alice/target")
    before = published.state.snapshot("model", "alice/target")
    local_before = {p.name: p.read_bytes() for p in out.iterdir()}
    published.state.inject("POST", r"/api/models/alice/target/commit/", times=1, **fault)
    capsys.readouterr()
    assert main(["push", str(out), "--repo", "alice/target", "--token", TOKEN]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing was committed" in err and TOKEN not in err
    assert published.state.snapshot("model", "alice/target") == before
    assert {p.name: p.read_bytes() for p in out.iterdir()} == local_before
    assert main(["push", str(out), "--repo", "alice/target", "--token", TOKEN]) == 0
    assert published.state.snapshot("model", "alice/target") != before


# ------------------------------------------------------------------ errors in plain words, never the token


def _message(fn) -> str:
    with pytest.raises(UnlearnError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    for secret in (TOKEN, OTHER_TOKEN, READ_TOKEN):
        assert secret not in msg
    return msg


def test_repo_not_found(published):
    msg = _message(lambda: unlearn("alice/nope", "alice/digits", "3", token=TOKEN))
    assert "model 'alice/nope' was not found locally or on the Hub" in msg
    msg = _message(lambda: unlearn("alice/tiny", "alice/nope-data", "3", token=TOKEN))
    assert "dataset 'alice/nope-data' was not found" in msg


def test_revision_not_found(published):
    msg = _message(lambda: unlearn("alice/tiny", "alice/digits", "3", revision="v9", token=TOKEN))
    assert "has no revision 'v9'" in msg


def test_private_and_gated_repos_need_a_token(published):
    published.state.repos[("model", "alice/tiny")].private = True
    msg = _message(lambda: unlearn("alice/tiny", "alice/digits", "3", token=None))
    assert "not found locally or on the Hub" in msg and "token if it is private" in msg
    result = unlearn("alice/tiny", "alice/digits", "3", method="ft", epochs=1, token=TOKEN)
    assert result.report.sources["model"]["commit"]
    published.state.repos[("model", "alice/tiny")].private = False
    published.state.repos[("model", "alice/tiny")].gated = True
    msg = _message(lambda: unlearn("alice/tiny", "alice/digits", "3", token=None))
    assert "gated" in msg and "token" in msg
    gated = unlearn("alice/tiny", "alice/digits", "3", method="ft", epochs=1, token=TOKEN)
    assert gated.report.sources["model"]["commit"] == published.state.repos[("model", "alice/tiny")].refs["main"]


def test_invalid_token_and_missing_write_permission_on_push(published):
    result = unlearn("alice/tiny", "alice/digits", "3", method="ft", epochs=1, token=TOKEN)
    msg = _message(lambda: push_to_hub(result, "alice/x", token="hf_wrong_token_000000000000"))
    assert "rejected the token" in msg and "(401)" in msg and "hf_wrong_token" not in msg
    msg = _message(lambda: push_to_hub(result, "bob/x", token=TOKEN))
    assert "cannot write to 'bob/x' (403)" in msg
    msg = _message(lambda: push_to_hub(result, "alice/x", token=READ_TOKEN))
    assert "(403)" in msg
    msg = _message(lambda: push_to_hub(result, "not a repo id!", token=TOKEN))
    assert "is not a valid repo id" in msg


def test_offline_mode_is_explained(published, offline, tmp_path):
    msg = _message(lambda: unlearn("alice/never-downloaded", "alice/digits", "3", token=TOKEN))
    assert "offline" in msg


def test_a_model_that_is_not_an_image_classifier(published, tmp_path):
    from huggingface_hub import HfApi
    from transformers import BertConfig

    folder = tmp_path / "bert"
    BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=8).save_pretrained(folder)
    api = HfApi(token=TOKEN)
    api.create_repo("alice/bert")
    api.upload_folder(folder_path=str(folder), repo_id="alice/bert")
    msg = _message(lambda: unlearn("alice/bert", "alice/digits", "3", token=TOKEN))
    assert "is not an image-classification model" in msg


def test_timm_model_built_offline_pulls_unlearns_and_pushes(hub, demo_assets, tmp_path, capsys):
    pytest.importorskip("timm", reason="timm (and torchvision) are not installed; scripts/test.sh installs them")
    from huggingface_hub import HfApi, ModelCard
    from safetensors.torch import load_file
    from transformers import AutoModelForImageClassification, TimmWrapperConfig, TimmWrapperForImageClassification

    names = [str(i) for i in range(10)]
    cfg = TimmWrapperConfig(architecture="test_resnet", num_labels=10, id2label=dict(enumerate(names)),
                            label2id={n: i for i, n in enumerate(names)},
                            pretrained_cfg={"input_size": [3, 16, 16], "mean": [0.5] * 3, "std": [0.5] * 3,
                                            "interpolation": "bilinear", "crop_pct": 1.0, "crop_mode": "center"})
    folder = tmp_path / "timm"
    TimmWrapperForImageClassification(cfg).save_pretrained(folder)
    api = HfApi(token=TOKEN)
    api.create_repo("alice/timm-tiny")
    api.upload_folder(folder_path=str(folder), repo_id="alice/timm-tiny")
    api.create_repo("alice/digits", repo_type="dataset")
    api.upload_folder(folder_path=str(demo_assets[1]), repo_id="alice/digits", repo_type="dataset")

    out = tmp_path / "out"
    code = main(["run", "--model", "alice/timm-tiny", "--dataset", "alice/digits", "--forget-class", "3",
                 "--method", "ft", "--epochs", "1", "--output", str(out), "--quiet", "--token", TOKEN,
                 "--push-to", "alice/timm-tiny-unlearned"])
    assert code == 0, capsys.readouterr().err
    pushed = AutoModelForImageClassification.from_pretrained("alice/timm-tiny-unlearned", token=TOKEN)
    assert type(pushed).__name__ == "TimmWrapperForImageClassification"
    local = load_file(str(out / "model.safetensors"))
    for name, tensor in pushed.state_dict().items():
        if name in local:
            assert torch.equal(tensor, local[name]), name
    card = ModelCard.load("alice/timm-tiny-unlearned", token=TOKEN)
    assert card.data.base_model == "alice/timm-tiny"
    assert {r.dataset_split for r in card.data.eval_results} == {"forget", "retain", "test"}


def test_an_unreachable_hub_fails_a_hub_id_at_once_in_one_line(monkeypatch):
    """No Hub to reach (the endpoint refuses connections): a Hub id fails in well under a second, naming the
    model (checked before the dataset), instead of minutes of retries; with_retries does not wait either."""
    import socket
    import time

    from hf_unlearn import hub as hub_module
    from hf_unlearn.config import RunConfig
    from hf_unlearn.session import load

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{closed}")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_module, "_reachable", {})
    config = RunConfig.from_keywords(model="someone/not-a-model", dataset="someone/not-data", forget="3")
    t0 = time.perf_counter()
    with pytest.raises(UnlearnError) as info:
        load(config)
    assert time.perf_counter() - t0 < 2
    message = str(info.value)
    assert message.startswith("model 'someone/not-a-model' is not a local path and the Hub") and "\n" not in message
    assert "cannot be reached from here" in message
    calls = []

    def flaky():
        calls.append(1)
        raise ConnectionError("refused")

    with pytest.raises(UnlearnError, match="could not reach the Hub"):
        hub_module.with_retries(flaky, "model", "x/y")
    assert len(calls) == 1  # nothing to wait for
