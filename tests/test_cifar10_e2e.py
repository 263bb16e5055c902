"""End to end on real data: a CIFAR-10 subset, a small ResNet trained here, every baseline.

Needs ``../shared/data/cifar10`` (present in CI beside the checkout; a user's
clone usually lacks it, and then this module is skipped with that reason).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CIFAR10

from hf_unlearn import available_methods, unlearn

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CIFAR10.exists(), reason=f"CIFAR-10 folder {CIFAR10} is absent (it is not shipped)"),
]

PER_CLASS_TRAIN, PER_CLASS_TEST = 300, 100
RECIPE = {"epochs": 15, "lr": 0.05, "batch_size": 64, "lr_schedule": "cosine", "bn_policy": "train",
          "augment": "flip_crop"}


def _per_class(ds, k: int):
    labels = np.asarray(ds["label"])
    rows = np.concatenate([np.flatnonzero(labels == c)[:k] for c in range(10)])
    return ds.select(np.sort(rows))


@pytest.fixture(scope="module")
def cifar_subset():
    import datasets

    full = datasets.load_dataset(str(CIFAR10))
    return datasets.DatasetDict({"train": _per_class(full["train"], PER_CLASS_TRAIN),
                                 "test": _per_class(full["test"], PER_CLASS_TEST)})


@pytest.fixture(scope="module")
def original(cifar_subset, tmp_path_factory):
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    from hf_unlearn.training import train_original

    names = cifar_subset["train"].features["label"].names
    cfg = ResNetConfig(num_channels=3, embedding_size=16, hidden_sizes=[32, 64], depths=[1, 1],
                       layer_type="basic", num_labels=10, id2label=dict(enumerate(names)),
                       label2id={n: i for i, n in enumerate(names)})
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4914, 0.4822, 0.4465],
                                  image_std=[0.247, 0.243, 0.261])
    model = ResNetForImageClassification(cfg)
    info = train_original(model, processor, cifar_subset, RECIPE, seed=0)
    assert info["test_accuracy"] > 25  # well above chance (10 %) on this small subset
    path = tmp_path_factory.mktemp("cifar-original")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def test_cifar_dataset_loads_with_detected_columns(cifar_subset):
    from hf_unlearn.config import DataSource
    from hf_unlearn.data import labelled_splits

    s = labelled_splits(cifar_subset, DataSource("cifar10"))
    assert (s.image_column, s.label_column) == ("img", "label") and s.class_names[3] == "cat"


@pytest.mark.parametrize("method", [m for m in available_methods() if m != "none"])  # none edits nothing
def test_each_baseline_forgets_automobile_and_reports(original, cifar_subset, method):
    settings = dict(RECIPE) if method == "retrain" else {"epochs": 2}
    result = unlearn(str(original), cifar_subset, "automobile", method=method, seed=0, **settings)
    r = result.report
    assert r.forget["class_names"] == ["automobile"] and r.data["n_forget"] == PER_CLASS_TRAIN
    assert r.data["n_test"] == 9 * PER_CLASS_TEST and r.data["n_test_forget"] == PER_CLASS_TEST
    for key in ("original", "unlearned"):
        m = r.metrics[key]
        for name in ("ua", "forget_acc", "ra", "ta", "mia_efficacy", "mia_loss", "forget_class_test_acc"):
            assert 0.0 <= m[name] <= 100.0
    assert r.metrics["original"]["forget_acc"] > 50
    if method == "retrain":
        assert r.metrics["unlearned"]["forget_acc"] < 10
        assert r.metrics["unlearned"]["forget_class_test_acc"] < 10
