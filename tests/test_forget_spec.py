"""Forget specifications on the digits: each kind, the test-split rule, retain subsampling."""

from __future__ import annotations

import numpy as np
import pytest

from hf_unlearn import ForgetSpec, UnlearnError
from hf_unlearn.config import DataSource
from hf_unlearn.data import build_data


def _build(digits, demo_model, spec, cache_dir, **source):
    _, processor = demo_model
    return build_data(digits, DataSource("digits", **source), spec, processor, 1, cache_dir=cache_dir)


def test_class_forgetting_by_name_and_id(digits, demo_model, cache_dir):
    data, info = _build(digits, demo_model, ForgetSpec(classes=("3",)), cache_dir)
    labels = np.asarray(digits["train"]["label"])
    assert info["n_forget"] == int((labels == 3).sum()) == len(data.forget)
    assert info["n_forget"] + info["n_retain"] == len(labels)
    assert set(data.forget.labels.tolist()) == {3} and 3 not in set(data.retain.labels.tolist())
    # test rule: TA over the remaining classes, forgotten class reported apart
    assert 3 not in set(data.test.labels.tolist())
    assert set(data.test_forget.labels.tolist()) == {3}
    assert len(data.test) + len(data.test_forget) == len(digits["test"])
    by_id, _ = _build(digits, demo_model, ForgetSpec(classes=(3,)), cache_dir)
    assert np.array_equal(by_id.forget_rows, data.forget_rows)


def test_random_fraction_is_seeded_and_stratified(digits, demo_model, cache_dir):
    a, _ = _build(digits, demo_model, ForgetSpec(fraction=0.1, seed=5), cache_dir)
    b, _ = _build(digits, demo_model, ForgetSpec(fraction=0.1, seed=5), cache_dir)
    c, _ = _build(digits, demo_model, ForgetSpec(fraction=0.1, seed=6), cache_dir)
    n = len(digits["train"])
    assert len(a.forget) == round(0.1 * n)
    assert np.array_equal(a.forget_rows, b.forget_rows) and not np.array_equal(a.forget_rows, c.forget_rows)
    assert len(a.test) == len(digits["test"]) and a.test_forget is None  # whole test split
    s, _ = _build(digits, demo_model, ForgetSpec(fraction=0.1, stratified=True), cache_dir)
    per_class = np.bincount(s.forget.labels.numpy(), minlength=10)
    totals = np.bincount(np.asarray(digits["train"]["label"]), minlength=10)
    assert np.all(np.abs(per_class - 0.1 * totals) <= 1)


def test_count_indices_and_filter(digits, demo_model, cache_dir):
    a, _ = _build(digits, demo_model, ForgetSpec(count=25), cache_dir)
    assert len(a.forget) == 25
    b, _ = _build(digits, demo_model, ForgetSpec(indices=(9, 2, 4)), cache_dir)
    assert b.forget_rows.tolist() == [2, 4, 9]
    assert b.forget.labels.tolist() == [digits["train"][i]["label"] for i in (2, 4, 9)]
    c, _ = _build(digits, demo_model, ForgetSpec(filter_column="label", filter_value="7"), cache_dir)
    assert set(c.forget.labels.tolist()) == {7} and len(c.test) == len(digits["test"])


def test_retain_fraction_subsamples_only_what_methods_train_on(digits, demo_model, cache_dir):
    data, info = _build(digits, demo_model, ForgetSpec(classes=("1",), retain_fraction=0.25), cache_dir)
    assert info["n_retain_train"] == round(0.25 * info["n_retain"]) == len(data.retain_train)
    assert len(data.retain) == info["n_retain"]


def test_images_are_decoded_once_into_a_uint8_cache(digits, demo_model, cache_dir):
    data, _ = _build(digits, demo_model, ForgetSpec(count=3), cache_dir)
    assert data.forget.images.dtype == torch_uint8() and data.forget.images.shape[1:] == (3, 16, 16)
    assert any(cache_dir.glob("*/pixels.npy")) and not any(cache_dir.rglob("*.pt"))


def torch_uint8():
    import torch

    return torch.uint8


@pytest.mark.parametrize("spec,fragment", [
    (dict(classes=("cat",)), "class 'cat' is not in the label set; valid classes: 0, 1, 2"),
    (dict(classes=(12,)), "class id 12 is out of range"),
    (dict(filter_column="label", filter_value="9999"), "the forget set is empty"),
    (dict(indices=tuple(range(1437))), "the forget set is the whole training split"),
    (dict(count=1437), "the forget set would be the whole training split"),
    (dict(indices=(5, 5)), "listed twice"),
    (dict(indices=(-1,)), "out of range"),
])
def test_bad_forget_sets_are_explained(digits, demo_model, cache_dir, spec, fragment):
    with pytest.raises(UnlearnError, match=None) as exc:
        _build(digits, demo_model, ForgetSpec(**spec), cache_dir)
    assert fragment in str(exc.value)


def test_forget_spec_needs_exactly_one_kind():
    with pytest.raises(UnlearnError, match="exactly one"):
        ForgetSpec()
    with pytest.raises(UnlearnError, match="exactly one"):
        ForgetSpec(classes=("1",), fraction=0.1)
    with pytest.raises(UnlearnError, match="between 0 and 1"):
        ForgetSpec(fraction=1.5)


def test_forget_spec_is_a_plain_value_whatever_form_its_fields_come_in():
    import dataclasses

    assert ForgetSpec(classes=("cat",), stratified=False, fraction=None) == ForgetSpec("class", classes=("cat",))
    arr = ForgetSpec(indices=np.array([3, 1, 2]))
    assert arr.indices == (3, 1, 2) and hash(arr) == hash(ForgetSpec(indices=[3, 1, 2]))
    assert ForgetSpec("indices", indices="1, 2") == ForgetSpec(indices=(1, 2))  # a string is parsed
    moved = dataclasses.replace(ForgetSpec(fraction=0.1, seed=1), seed=2)
    assert moved == ForgetSpec(fraction=0.1, seed=2)
    assert ForgetSpec.from_dict(ForgetSpec(filter_column="label", filter_value="7").to_dict()).filter_value == "7"


@pytest.mark.parametrize("spec,fragment", [
    (dict(fraction=0.0), "forget fraction must be between 0 and 1"),  # zero is a value, not "not given"
    (dict(count=0), "forget count must be a positive number of rows"),
    (dict(classes=("1",), stratified=True), "give exactly one forget specification"),
    (dict(kind="class", fraction=0.2), "unknown setting 'fraction' for the 'class' forget kind"),
])
def test_forget_spec_errors_are_one_line(spec, fragment):
    with pytest.raises(UnlearnError) as exc:
        ForgetSpec(**spec)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_the_first_argument_of_forget_spec_is_the_kind():
    with pytest.raises(UnlearnError, match="first argument is the kind's name"):
        ForgetSpec(("cat",))
