"""Test-session setup: no network, private caches, and the demo assets built once.

The Hub clients read their environment at import time, so it is set here,
before anything imports huggingface_hub, datasets or transformers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="hf-unlearn-tests-"))
os.environ["HF_HOME"] = str(_SESSION_DIR / "hf_home")
os.environ["HF_UNLEARN_CACHE"] = str(_SESSION_DIR / "cache")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ.pop("HF_TOKEN", None)

import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CIFAR10 = SHARED / "data" / "cifar10"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def demo_assets() -> tuple[Path, Path]:
    """(model dir, dataset dir) of the offline digits demo, trained once per session."""
    from hf_unlearn.demo import ensure_demo_assets

    return ensure_demo_assets()


@pytest.fixture(scope="session")
def digits(demo_assets):
    import datasets

    return datasets.load_dataset(str(demo_assets[1]))


@pytest.fixture(scope="session")
def demo_model(demo_assets):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    path = str(demo_assets[0])
    return AutoModelForImageClassification.from_pretrained(path), AutoImageProcessor.from_pretrained(path)


@pytest.fixture()
def cache_dir() -> Path:
    return Path(os.environ["HF_UNLEARN_CACHE"]) / "tensors"
