"""Test-session setup: no network, private caches, and the demo assets built once.

The Hub clients read their environment at import time, so it is set here,
before anything imports huggingface_hub, datasets or transformers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hub_server import HubServer, HubState  # noqa: E402

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="hf-unlearn-tests-"))
# Every Hub call of the session goes to this loopback server, never to the internet.
HUB = HubServer().start()
os.environ["HF_ENDPOINT"] = HUB.endpoint
os.environ["HF_HOME"] = str(_SESSION_DIR / "hf_home")
os.environ["HF_UNLEARN_CACHE"] = str(_SESSION_DIR / "cache")
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # gradio posts its telemetry through huggingface_hub's sender,
# past HF_HUB_DISABLE_TELEMETRY, i.e. to HF_ENDPOINT: the loopback Hub
os.environ["HF_HUB_ETAG_TIMEOUT"] = "5"
os.environ["HF_HUB_DOWNLOAD_TIMEOUT"] = "10"
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ.pop("HF_TOKEN", None)

import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CIFAR10 = SHARED / "data" / "cifar10"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def random_images(n: int, side: int):
    """A ``datasets.Dataset`` of n random RGB images (column ``image``), drawn with seed 0."""
    import datasets
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(n)]
    return datasets.Dataset.from_dict({"image": imgs}, features=datasets.Features({"image": datasets.Image()}))


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


#: the app's file inputs, which its API (gradio_client) wants named even when empty
NO_FILES = {"forget_index_file": None, "forget_id_file": None, "tuned_file": None}

USER, TOKEN = "alice", "hf_alice_secret_token_0123456789"
OTHER_USER, OTHER_TOKEN = "bob", "hf_bob_secret_token_9876543210"
READ_TOKEN = "hf_alice_read_only_token_5555"


@pytest.fixture()
def hub():
    """The loopback Hub with a fresh, empty state and two users (alice writes to alice/*, bob to bob/*)."""
    HUB.state = HubState()
    HUB.state.add_user(USER, TOKEN)
    HUB.state.add_user(OTHER_USER, OTHER_TOKEN)
    HUB.state.add_user(USER, READ_TOKEN, write=False)
    yield HUB
    HUB.state.clear_faults()


@pytest.fixture()
def offline(monkeypatch):
    """Behave as with HF_HUB_OFFLINE=1 (the flag is read at import time, so patch the constant)."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture()
def cache_dir() -> Path:
    return Path(os.environ["HF_UNLEARN_CACHE"]) / "tensors"


@pytest.fixture()
def published(hub, demo_assets):
    """The demo model as alice/tiny and the digits as the dataset alice/digits on the loopback Hub."""
    from huggingface_hub import HfApi

    api = HfApi(token=TOKEN)
    api.create_repo("alice/tiny")
    api.upload_folder(folder_path=str(demo_assets[0]), repo_id="alice/tiny")
    api.create_repo("alice/digits", repo_type="dataset")
    api.upload_folder(folder_path=str(demo_assets[1]), repo_id="alice/digits", repo_type="dataset")
    return hub
