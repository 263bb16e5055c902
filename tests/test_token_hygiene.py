"""Tokens never leak: every artefact of a run, push and failed push is scanned for the token strings.

Scanned: stdout and stderr (file-descriptor level), every log record of every
logger at DEBUG, every file the run wrote (checkpoint, report, card, mask,
cache), every file the Hub received, every exception message shown to the
user, and what the app returns.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import NO_FILES, OTHER_TOKEN, READ_TOKEN, TOKEN
from test_app import app_url, client, run  # noqa: F401 - the app fixture, reused

from hf_unlearn import UnlearnError, push_to_hub, unlearn
from hf_unlearn.cli import main

BAD_TOKEN = "hf_this_token_is_wrong_but_still_secret_42"
SECRETS = (TOKEN, OTHER_TOKEN, READ_TOKEN, BAD_TOKEN)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a broken record must not hide the others
            self.lines.append(str(record.msg))


@pytest.fixture()
def all_logs():
    """Every record of every logger, at DEBUG, including libraries that do not propagate."""
    cap = _Capture()
    names = ["", "hf_unlearn", "huggingface_hub", "transformers", "datasets", "httpx", "httpcore", "httpx2",
             "httpcore2", "urllib3", "accelerate", "gradio"]
    saved = []
    for name in names:
        lg = logging.getLogger(name)
        saved.append((lg, lg.level))
        lg.addHandler(cap)
        lg.setLevel(logging.DEBUG)
    yield cap
    for lg, level in saved:
        lg.removeHandler(cap)
        lg.setLevel(level)


def _leaks(text: str | bytes, where: str) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f"{where} contains {s[:8]}…" for s in SECRETS if s.encode() in data]


def _scan_tree(root: Path) -> list[str]:
    found = []
    for p in root.rglob("*"):
        if p.is_file():
            found += _leaks(p.read_bytes(), str(p))
    return found


def _scan_hub(hub) -> list[str]:
    found = []
    for (rtype, rid), repo in hub.state.repos.items():
        for commit in repo.commits.values():
            found += _leaks(commit.title or "", f"{rtype} {rid} commit title")
            for path, f in commit.files.items():
                found += _leaks(hub.state.file_bytes(f), f"{rtype} {rid}/{path}")
    return found


def test_cli_run_push_and_failed_pushes_never_show_a_token(published, tmp_path, capfd, all_logs, monkeypatch):
    import os

    out = tmp_path / "out"
    argv = ["run", "--model", "alice/tiny", "--dataset", "alice/digits", "--forget-class", "3", "--method", "rbm",
            "--epochs", "1", "--output", str(out), "--token", TOKEN, "--push-to", "alice/tiny-unlearned",
            "--reference", "retrain", "--retrain-set", "epochs=1"]
    assert main(argv) == 0
    # failed pushes: an invalid token, a read-only token, a token from the environment that is invalid
    assert main(["push", str(out), "--repo", "alice/other", "--token", BAD_TOKEN]) == 2
    assert main(["push", str(out), "--repo", "alice/other", "--token", READ_TOKEN]) == 2
    assert main(["push", str(out), "--repo", "bob/not-mine", "--token", TOKEN]) == 2
    monkeypatch.setenv("HF_TOKEN", BAD_TOKEN)
    assert main(["push", str(out), "--repo", "alice/third"]) == 2
    printed = capfd.readouterr()
    leaks = (_leaks(printed.out, "stdout") + _leaks(printed.err, "stderr")
             + [x for line in all_logs.lines for x in _leaks(line, "a log record")]
             + _scan_tree(out) + _scan_tree(Path(os.environ["HF_UNLEARN_CACHE"])) + _scan_hub(published))
    assert not leaks, leaks
    assert all_logs.lines, "the log capture saw nothing: the scan would prove nothing"
    assert (out / "README.md").exists() or (out / "report.md").exists()


def test_api_errors_and_reports_never_hold_a_token(published, tmp_path, all_logs):
    res = unlearn("alice/tiny", "alice/digits", "3", method="ft", epochs=1, token=TOKEN)
    texts = [res.report.to_json(), res.report.summary()]
    for call in (lambda: push_to_hub(res, "alice/x", token=BAD_TOKEN),
                 lambda: push_to_hub(res, "bob/x", token=TOKEN),
                 lambda: unlearn("alice/tiny", "alice/nothing-here", "3", token=BAD_TOKEN),
                 lambda: unlearn("alice/private-nothing", "alice/digits", "3", token=READ_TOKEN)):
        with pytest.raises(UnlearnError) as e:
            call()
        texts.append(str(e.value))
        texts.append(repr(e.value))
    res.save(tmp_path / "saved")
    info = push_to_hub(res, "alice/api-push", token=TOKEN)
    texts.append(repr(info))
    leaks = [x for t in texts for x in _leaks(t, "an API message or report")] + _scan_tree(tmp_path)
    leaks += [x for line in all_logs.lines for x in _leaks(line, "a log record")] + _scan_hub(published)
    assert not leaks, leaks


def test_the_app_never_shows_a_token(app_url, published):  # noqa: F811 - the imported fixture
    c = client(app_url)
    out = c.predict(api_name="/run", model="alice/tiny", dataset="alice/digits", forget_classes=["3"],
                    **NO_FILES, method="ft", epochs=1, with_retrain=False)
    assert "**Error" not in out[0], out[0]
    shown = [str(out)]
    for token, repo in ((TOKEN, "alice/app-push"), (BAD_TOKEN, "alice/app-bad"), (READ_TOKEN, "alice/app-ro"),
                        (TOKEN, "bob/app-not-mine")):
        shown.append(str(c.predict(api_name="/push", hub_token=token, repo_id=repo, private_repo=False,
                                   open_pr=False)))
    assert "alice/app-push" in shown[1] and "Error" not in shown[1], shown[1]
    assert all("Error" in s or "error" in s.lower() or "cannot" in s for s in shown[2:]), shown[2:]
    leaks = [x for s in shown for x in _leaks(s, "the app's answer")] + _scan_hub(published)
    assert not leaks, leaks
