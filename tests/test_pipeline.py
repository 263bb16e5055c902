"""A pushed demo checkpoint works with ``transformers.pipeline("image-classification")``.

The pipeline (and the Hub's inference widget, which runs it) converts every
input to RGB, so a checkpoint is only usable there if it takes three
channels and ships no custom code. This pushes a demo unlearning result to
the loopback Hub with the project's own push code and classifies digits with
the stock pipeline, pulled by repo id like any Hub user would.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import TOKEN

from hf_unlearn import push_to_hub, unlearn
from hf_unlearn.demo import DEMO_NUM_CHANNELS, DEMO_VERSION, demo_dir, demo_model_folder

FORGET = "3"
REPO = "alice/digits-forgot-3"
#: test rows per digit (the forgotten one left out): enough for "most of them" to mean something
PER_CLASS = 2


@pytest.fixture(scope="module")
def saved_result(demo_assets, tmp_path_factory) -> Path:
    """A short FT run on the demo (forget digit 3), saved as an output folder: pushed once per test."""
    result = unlearn(str(demo_assets[0]), str(demo_assets[1]), FORGET, method="ft", epochs=1, seed=0)
    return result.save(tmp_path_factory.mktemp("pipeline") / "forgot-3")


@pytest.fixture(scope="module")
def probe(demo_assets, digits) -> list[tuple[object, int]]:
    """(greyscale PIL image, label) of test digits the original model gets right, none of the forgotten class.

    "Right" is judged through the project's own decoding (``encode_images``), not the pipeline, so the
    pipeline's answers are checked against something it did not produce.
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from hf_unlearn.data import PixelNormalizer, encode_images

    # a copy of its own: the session's demo_model is shared, and eval() would change it for other tests
    model = AutoModelForImageClassification.from_pretrained(str(demo_assets[0]))
    processor = AutoImageProcessor.from_pretrained(str(demo_assets[0]))
    test = digits["test"]
    pixels, _ = encode_images(test, "image", processor, model.config.num_channels)
    assert pixels.shape[1] == DEMO_NUM_CHANNELS and torch.equal(pixels[:, :1].expand_as(pixels), pixels)  # L → RGB
    model.eval()
    with torch.no_grad():
        predicted = model(pixel_values=PixelNormalizer.from_processor(processor)(pixels)).logits.argmax(1).tolist()
    forgotten = model.config.label2id[FORGET]
    chosen: list[tuple[object, int]] = []
    taken: dict[int, int] = {}
    for i, label in enumerate(test["label"]):
        if label != forgotten and predicted[i] == label and taken.get(label, 0) < PER_CLASS:
            taken[label] = taken.get(label, 0) + 1
            chosen.append((test[i]["image"], label))
    assert len(chosen) == PER_CLASS * (len(model.config.id2label) - 1)
    return chosen


@pytest.fixture()
def pushed(hub, saved_result) -> str:
    """The saved result pushed to the loopback Hub as a public repo; returns its repo id."""
    push_to_hub(saved_result, REPO, token=TOKEN)
    return REPO


def test_demo_assets_take_rgb_and_live_in_a_fresh_cache_folder(demo_assets):
    config = json.loads((demo_assets[0] / "config.json").read_text())
    processor = json.loads((demo_assets[0] / "preprocessor_config.json").read_text())
    assert config["num_channels"] == DEMO_NUM_CHANNELS == 3
    assert len(processor["image_mean"]) == len(processor["image_std"]) == 3 and processor["do_convert_rgb"]
    assert DEMO_VERSION >= 2 and demo_assets[0].parent == demo_dir()  # the entry of this version's key
    assert demo_dir().parent.name == "demo" and (demo_dir() / "manifest.json").is_file()


def test_a_one_channel_model_left_in_an_explicit_cache_dir_is_trained_again(demo_assets, tmp_path):
    """An explicit cache_dir has no version in its name: the stale model itself must be recognised."""
    import shutil

    stale = tmp_path / "digits-resnet"
    shutil.copytree(demo_assets[0], stale)
    config = json.loads((stale / "config.json").read_text())
    (stale / "config.json").write_text(json.dumps({**config, "num_channels": 1}))
    folder = demo_model_folder(tmp_path, demo_assets[1])
    assert json.loads((folder / "config.json").read_text())["num_channels"] == DEMO_NUM_CHANNELS


def test_pushed_result_classifies_grey_and_rgb_digits_with_the_stock_pipeline(pushed, probe):
    from transformers import pipeline

    classify = pipeline("image-classification", model=pushed, trust_remote_code=False)  # public: no token
    id2label = classify.model.config.id2label
    assert classify.model.config.num_channels == 3
    correct = 0
    for image, label in probe:
        assert image.mode == "L"
        grey, rgb = (classify(im, top_k=len(id2label)) for im in (image, image.convert("RGB")))
        for out in (grey, rgb):
            assert {o["label"] for o in out} == set(id2label.values())
            assert math.isclose(sum(o["score"] for o in out), 1.0, abs_tol=1e-4)
        assert grey[0]["label"] == rgb[0]["label"]  # the pipeline made the grey image RGB: the same input
        assert grey[0]["score"] == pytest.approx(rgb[0]["score"], abs=1e-5)
        correct += grey[0]["label"] == id2label[label]
    # FT for one epoch keeps the other digits; the original got every one of these right
    assert correct >= 0.8 * len(probe), f"{correct}/{len(probe)} digits right through the pipeline"


def test_pushed_repo_ships_no_custom_code(pushed):
    from huggingface_hub import HfApi

    files = HfApi().list_repo_files(pushed)
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= set(files)
    assert not [f for f in files if f.endswith(".py")], files
    api = HfApi()
    for name in ("config.json", "preprocessor_config.json"):
        content = json.loads(Path(api.hf_hub_download(pushed, name)).read_text())
        assert "auto_map" not in content, name  # auto_map points at remote code, which needs trust_remote_code
    config = json.loads(Path(api.hf_hub_download(pushed, "config.json")).read_text())
    assert config["model_type"] == "resnet" and config["architectures"] == ["ResNetForImageClassification"]
