"""The offline default: scikit-learn's bundled digits and a small ResNet trained on them.

Nothing here touches the network. The digits (1,797 8×8 images) are written
once as a Hub-style parquet dataset folder and a transformers ResNet is
trained on them once; both are cached, so the demo and the app start quickly
and exercise the same loading code as a Hub repo.

The images stay greyscale in the parquet, but the model takes three channels:
``transformers.pipeline("image-classification")`` and the Hub's inference
widget convert every input to RGB, so a pushed demo checkpoint has to accept
RGB to be usable there (the data pipeline converts the "L" images to the
model's channel count).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .hub import default_cache_dir

#: Part of the cache folder's name: bumped whenever the assets change (2: the model takes RGB, not one channel),
#: so that a cache built by an older version is never reused.
DEMO_VERSION = 2
DEMO_SEED = 0
#: The recipe the demo model was trained with; Retrain must use the same one.
DEMO_RECIPE: dict[str, Any] = {
    "epochs": 12, "lr": 0.05, "batch_size": 64, "optimizer": "sgd", "momentum": 0.9,
    "weight_decay": 5e-4, "lr_schedule": "cosine", "bn_policy": "train", "augment": "none",
}
DEMO_IMAGE_SIZE = 16
#: RGB, the input the image-classification pipeline and the Hub widget give any model.
DEMO_NUM_CHANNELS = 3


#: the demo's key in the hf-unlearn cache: a new version is a new entry (an older one ages out)
DEMO_KEY = {"demo": DEMO_VERSION, "channels": DEMO_NUM_CHANNELS}


def demo_cache() -> Any:
    """The demo's assets are one entry of a cache beside the references and tensors: they share its size limit
    and its least-recently-used eviction (and come back, identical, if evicted)."""
    from .cache import FolderCache

    return FolderCache(default_cache_dir() / "demo")


def demo_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` itself, or the demo's entry in the default cache (named by the digest of :data:`DEMO_KEY`)."""
    return Path(cache_dir) if cache_dir else demo_cache().path(DEMO_KEY)


def digits_dataset_folder(root: Path) -> Path:
    """Write the digits as ``train``/``test`` parquet files with Image and ClassLabel features."""
    folder = root / "digits"
    if (folder / "data" / "test-00000-of-00001.parquet").exists():
        return folder
    import datasets
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    labels = digits.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=DEMO_SEED,
                                           stratify=labels)
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=[str(i) for i in range(10)])})
    tmp = Path(tempfile.mkdtemp(prefix=".digits-", dir=root))
    (tmp / "data").mkdir()
    for split, idx in (("train", idx_train), ("test", idx_test)):
        ds = datasets.Dataset.from_dict(
            {"image": [Image.fromarray(images[i], mode="L") for i in idx], "label": labels[idx].tolist()},
            features=features)
        ds.to_parquet(str(tmp / "data" / f"{split}-00000-of-00001.parquet"))
    (tmp / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
        "  - split: test\n    path: data/test-*\n---\n# digits\n\nscikit-learn's 8x8 digits, 80/20 stratified split.\n")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def demo_model_folder(root: Path, dataset_folder: Path, progress: Any = None,
                      tensors: Path | None = None) -> Path:
    """Train (once) a small transformers ResNet on the digits' train split and save it."""
    folder = root / "digits-resnet"
    if (folder / "model.safetensors").exists() and _num_channels(folder) == DEMO_NUM_CHANNELS:
        return folder  # a one-channel model an older version left in an explicit cache_dir is trained again
    import datasets
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    from .engine import Engine
    from .training import train_original

    names = [str(i) for i in range(10)]
    config = ResNetConfig(num_channels=DEMO_NUM_CHANNELS, embedding_size=16, hidden_sizes=[32, 64], depths=[1, 1],
                          layer_type="basic", downsample_in_first_stage=False, num_labels=10,
                          id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    # do_convert_rgb: a greyscale image handed to the processor directly (not through the pipeline) works too
    processor = ViTImageProcessor(size={"height": DEMO_IMAGE_SIZE, "width": DEMO_IMAGE_SIZE},
                                  image_mean=[0.5] * DEMO_NUM_CHANNELS, image_std=[0.5] * DEMO_NUM_CHANNELS,
                                  do_convert_rgb=True)
    from accelerate.utils import set_seed

    set_seed(DEMO_SEED)
    trained = ResNetForImageClassification(config)
    dsd = datasets.load_dataset(str(dataset_folder))
    train_original(trained, processor, dsd, DEMO_RECIPE, seed=DEMO_SEED, cache_dir=tensors or root / "tensors",
                   engine=Engine(progress=progress))
    tmp = Path(tempfile.mkdtemp(prefix=".digits-resnet-", dir=root))
    trained.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def _num_channels(model_folder: Path) -> int | None:
    """The input channels a saved model's config names (None when the config is missing or unreadable)."""
    import json

    try:
        return int(json.loads((model_folder / "config.json").read_text()).get("num_channels", 3))
    except (OSError, ValueError, TypeError):
        return None


#: one build at a time in a process (the app warms the demo up while a first click may ask for it too)
_BUILDING = threading.Lock()


def ensure_demo_assets(cache_dir: str | Path | None = None, progress: Any = None) -> tuple[Path, Path]:
    """(model folder, dataset folder) of the offline demo, built on first use: in ``cache_dir`` when given, else
    as an entry of the hf-unlearn cache, written whole under a temporary name and checked on every use."""
    with _BUILDING:
        if cache_dir:
            root = Path(cache_dir)
            root.mkdir(parents=True, exist_ok=True)
            dataset = digits_dataset_folder(root)
            return demo_model_folder(root, dataset, progress), dataset
        cache = demo_cache()
        entry = cache.get(DEMO_KEY)
        if entry is None:
            tensors = default_cache_dir() / "tensors"
            entry = cache.put(DEMO_KEY, lambda tmp: demo_model_folder(tmp, digits_dataset_folder(tmp), progress,
                                                                      tensors))
    return entry / "digits-resnet", entry / "digits"


def run_demo(cache_dir: str | Path | None = None, forget_class: str = "3", method: str = "ft",
             print_fn: Any = print, **settings: Any) -> Any:
    """Forget one digit with ``method``, retrain for reference, and print the metrics."""
    from .api import unlearn

    model_dir, data_dir = ensure_demo_assets(cache_dir)
    tensors = Path(cache_dir) / "tensors" if cache_dir else None  # None: the default cache's
    result = unlearn(str(model_dir), str(data_dir), forget=forget_class, method=method, reference="retrain",
                     retrain_settings=DEMO_RECIPE, seed=DEMO_SEED, cache_dir=tensors, **settings)
    print_fn(result.report.summary())
    return result
