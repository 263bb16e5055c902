"""The app's one progress display per job: named phases, the whole job's share, the time left; and the
downloads a finished run offers (the checkpoint zip, written whole or not at all)."""

from __future__ import annotations

import dataclasses
import zipfile

import pytest

from hf_unlearn.ui.jobs import Tracker, run_plan


def _config(seeds=None, retrain=True, epochs=5):
    from hf_unlearn.config import RunConfig
    from hf_unlearn.demo import DEMO_RECIPE

    config = RunConfig.from_keywords(model="m", dataset="d", forget="3", method="rbm", epochs=epochs, seeds=seeds,
                                     reference="retrain" if retrain else None,
                                     retrain_settings=DEMO_RECIPE if retrain else None)
    return config


def test_a_runs_plan_names_its_phases_in_order_weighted_by_epochs():
    plan = run_plan(_config(seeds="0,1"))
    assert [name for name, _ in plan] == ["preparing data", "retrain reference 1/2", "unlearning with rbm 1/2",
                                          "evaluating 1/2", "retrain reference 2/2", "unlearning with rbm 2/2",
                                          "evaluating 2/2"]
    assert dict(plan)["retrain reference 1/2"] == 12 and dict(plan)["unlearning with rbm 1/2"] == 5
    assert [n for n, _ in run_plan(_config(retrain=False))] == ["preparing data", "unlearning with rbm",
                                                                 "evaluating"]


def test_the_tracker_follows_phases_and_estimates_the_rest_at_the_pace_of_training(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("hf_unlearn.ui.jobs.time.perf_counter", lambda: clock[0])
    tracker = Tracker(run_plan(_config()))  # preparing 1, retrain 12, rbm 5, evaluating 0.5: 18.5 epochs
    assert tracker.fraction() == 0 and tracker.seconds_left() is None
    tracker.feed({"stage": "preparing data"})
    clock[0] += 2
    tracker.feed({"stage": "retrain reference"})
    assert tracker.fraction() == pytest.approx(1 / 18.5)
    clock[0] += 3  # 3 s for 3 of 12 epochs: 1 s an epoch
    tracker.feed({"phase": "retrain", "epoch": 3, "epochs": 12, "step": 63, "steps": 252, "loss": 0.5})
    assert tracker.fraction() == pytest.approx(4 / 18.5)
    assert tracker.seconds_left() == pytest.approx(9 + 5 + 0.5)
    html = tracker.html()
    assert "<b>retrain reference</b> · epoch 3/12 · step 63/252</div>" in html
    assert 'aria-valuenow="22"' in html and "about 14 s left" in html


def test_a_reference_read_from_the_cache_costs_nothing_in_the_estimate():
    tracker = Tracker(run_plan(_config()))
    tracker.feed({"stage": "preparing data"})
    tracker.feed({"stage": "retrain reference (read from the cache)"})
    tracker.feed({"stage": "unlearning with rbm"})
    assert tracker.fraction() == pytest.approx(1 / 6.5)  # 1 of preparing + 5 of rbm + 0.5 of evaluating


def test_a_comparisons_share_is_its_tasks_done():
    tracker = Tracker()
    tracker.feed({"stage": "unlearning with ft", "task": 2, "tasks": 4, "task_name": "ft, seed 0"})
    tracker.feed({"phase": "ft", "epoch": 1, "epochs": 1, "step": 10, "steps": 20, "loss": 0.1, "task": 2,
                  "tasks": 4, "task_name": "ft, seed 0"})
    assert tracker.fraction() == pytest.approx(2.5 / 4)
    assert '"hfu-phase">3/4 ft, seed 0 · <b>unlearning with ft</b> · epoch 1/1' in tracker.html()


def test_the_checkpoint_zip_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from hf_unlearn.errors import UnlearnError
    from hf_unlearn.output import zip_folder

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "sub").mkdir()
    (folder / "sub" / "x.txt").write_text("x")
    target = zip_folder(folder, tmp_path / "ckpt.zip")
    with zipfile.ZipFile(target) as z:
        assert sorted(z.namelist()) == ["ckpt/config.json", "ckpt/sub/x.txt"]

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "write", full_disk)
    with pytest.raises(UnlearnError, match="could not write the archive 'other.zip' \\(No space left on device\\)"):
        zip_folder(folder, tmp_path / "other.zip")
    assert not (tmp_path / "other.zip").exists() and not list(tmp_path.glob(".other.zip.tmp-*"))


def test_a_saved_run_has_a_markdown_report_with_its_plots_and_a_legend(demo_assets, tmp_path):
    from hf_unlearn import unlearn
    from hf_unlearn.demo import DEMO_RECIPE
    from hf_unlearn.ui.downloads import run_downloads

    result = unlearn(str(demo_assets[0]), str(demo_assets[1]), forget="3", method="rbm", epochs=1,
                     reference="retrain", retrain_settings=DEMO_RECIPE)
    checkpoint, files = run_downloads(result, tmp_path)
    assert [f.rsplit("/", 1)[-1] for f in files] == ["hf-unlearn-rbm-class-3.zip", "report.md", "report.json",
                                                     "per_class.png", "mia.png"]
    text = (checkpoint / "report.md").read_text()
    assert text.startswith("# Unlearning report: rbm, forget class 3")
    assert "![Per-class test accuracy](per_class.png)" in text and "(mia.png)" in text
    assert "**Avg.Gap** " not in text and "- **UA** (≈R the closer to Retrain the better) *(in Avg.Gap)*" in text
    assert "| rbm (unlearned) |" in text and "**Verdict:**" in text
    assert dataclasses.is_dataclass(result)
