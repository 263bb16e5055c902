"""Bad input gets one line saying what was wrong and what to do (API and CLI, exit code 2)."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_unlearn import UnlearnError, unlearn
from hf_unlearn.cli import main


def _no_image_dataset():
    d = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]})
    return datasets.DatasetDict({"train": d, "test": d})


def _no_label_dataset():
    img = Image.fromarray(np.zeros((8, 8), dtype=np.uint8))
    d = datasets.Dataset.from_dict({"image": [img] * 4, "caption": ["x"] * 4},
                                   features=datasets.Features({"image": datasets.Image(),
                                                               "caption": datasets.Value("string")}))
    return datasets.DatasetDict({"train": d, "test": d})


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_unknown_model_path(demo_assets):
    with pytest.raises(UnlearnError) as e:
        unlearn("./no/such/model", str(demo_assets[1]), "3")
    assert "model path './no/such/model' does not exist" in _one_line(e.value)


def test_unknown_model_repo_offline(demo_assets, offline):
    with pytest.raises(UnlearnError) as e:
        unlearn("nobody/no-such-model", str(demo_assets[1]), "3")
    msg = _one_line(e.value)
    assert "nobody/no-such-model" in msg and "offline" in msg


def test_dataset_without_image_column(demo_assets):
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), _no_image_dataset(), "1")
    assert "has no image column (columns: text, label)" in _one_line(e.value)


def test_label_column_not_found(demo_assets):
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), _no_label_dataset(), "1")
    assert "no label column found" in _one_line(e.value) and "--label-column" in str(e.value)
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "1", label_column="fine")
    assert "label column 'fine' not in the dataset; its columns are: image, label" in _one_line(e.value)


def test_class_not_in_label_set_lists_valid_ones(demo_assets):
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "cat")
    assert "valid classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in _one_line(e.value)


def test_empty_and_total_forget_sets(demo_assets):
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), str(demo_assets[1]), {"filter_column": "label", "filter_value": "42"})
    assert "forget set is empty" in _one_line(e.value)
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), str(demo_assets[1]), [str(i) for i in range(10)])
    assert "whole training split" in _one_line(e.value)


def test_unknown_method_and_setting(demo_assets):
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="magic")
    assert "unknown method 'magic'; available methods: retrain, ft, ga" in _one_line(e.value)
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="ft", temperature=2)
    assert "unknown setting 'temperature' for method 'ft'; its settings are: epochs, lr" in _one_line(e.value)


@pytest.mark.parametrize("epochs", [0, -3])
def test_non_positive_epochs(demo_assets, epochs):
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="ft", epochs=epochs)
    assert f"epochs must be a positive integer, got {epochs}" in _one_line(e.value)


def test_label_mismatch_is_an_error_unless_head_reinitialised(demo_assets, tmp_path):
    ds = datasets.load_dataset(str(demo_assets[1]))
    five = ds.filter(lambda r: r["label"] < 5)
    five = five.cast_column("label", datasets.ClassLabel(names=["a", "b", "c", "d", "e"]))
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), five, "a")
    assert "predicts 10 classes but the dataset has 5" in _one_line(e.value) and "--reinit-head" in str(e.value)
    result = unlearn(str(demo_assets[0]), five, "a", method="ft", epochs=1, reinit_head=True)
    assert result.model.config.num_labels == 5 and result.model.config.id2label[0] == "a"


@pytest.mark.parametrize("argv,fragment", [
    (["--forget-class", "cat"], "valid classes: 0, 1"),
    (["--forget-class", "3", "--method", "nope"], "unknown method 'nope'"),
    (["--forget-class", "3", "--epochs", "0"], "epochs must be a positive integer"),
    (["--forget-class", "3", "--set", "bogus=1"], "unknown setting 'bogus'"),
    (["--forget-class", "3", "--set", "lr=fast"], "must be a float, got 'fast'"),
    (["--forget-indices", "1,x"], "forget index 'x' is not an integer"),
    (["--forget-class", "3", "--label-column", "nope"], "label column 'nope' not in the dataset"),
])
def test_cli_errors_exit_2_with_one_line(demo_assets, tmp_path, capsys, argv, fragment):
    out = tmp_path / "out"
    code = main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--output", str(out),
                 "--quiet", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and fragment in err[-1]
    assert not out.exists()
