"""Streamed datasets (`streaming=True`): one pass to an on-disk table, then the same run as a loaded one."""

from __future__ import annotations

import datasets

from hf_unlearn import unlearn
from hf_unlearn.cli import main


def test_a_streamed_dataset_gives_the_same_run(demo_assets, tmp_path):
    common = {"method": "ft", "epochs": 1, "seed": 0}
    loaded = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", cache_dir=tmp_path / "a", **common)
    streamed = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", streaming=True, cache_dir=tmp_path / "b",
                       **common)
    for k in ("ua", "ra", "ta", "mia_efficacy"):
        assert streamed.report.metrics["unlearned"][k] == loaded.report.metrics["unlearned"][k], k
    assert streamed.report.data["n_forget"] == loaded.report.data["n_forget"]


def test_a_stream_object_from_the_caller_is_accepted(demo_assets):
    stream = datasets.load_dataset(str(demo_assets[1]), streaming=True)
    assert isinstance(stream, datasets.IterableDatasetDict)
    res = unlearn(str(demo_assets[0]), stream, "5", method="ft", epochs=1)
    assert res.report.data["n_forget"] > 0 and res.report.metrics["unlearned"]["ua"] >= 0


def test_cli_streaming_with_a_column_filter(demo_assets, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--streaming",
                 "--forget-filter", "label=7", "--method", "ft", "--epochs", "1", "--output", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (out / "report.json").exists()
