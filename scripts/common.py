"""Helpers the benchmark scripts share: CIFAR-10 subsets, cached originals, mean ± std tables."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np

SHARED_CIFAR10 = Path(os.environ.get("HF_UNLEARN_CIFAR10")
                      or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10")
CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
#: The full-CIFAR-10 recipe of the GPU benchmark: the original and every Retrain use it (Retrain on D_r).
CIFAR_RECIPE = {"epochs": 18, "lr": 0.1, "batch_size": 512, "optimizer": "sgd", "momentum": 0.9,
                "weight_decay": 5e-4, "lr_schedule": "cosine", "warmup": 0.0, "bn_policy": "train",
                "augment": "flip_crop"}
#: Input side: the stock (ImageNet-stem, stride-4) ResNet-18 sees 64 px CIFAR as a CIFAR-stem one sees 32 px / 2.
CIFAR_SIZE = 64


def cifar10_full(path: Path = SHARED_CIFAR10) -> Any:
    """The whole CIFAR-10 (50k / 10k) from the shared Hub-format folder (``HF_UNLEARN_CIFAR10`` overrides)."""
    import datasets

    if not path.exists():
        raise SystemExit(f"CIFAR-10 not found at {path}: set HF_UNLEARN_CIFAR10 or provide ../shared")
    return datasets.load_dataset(str(path))


def resnet18_and_processor(class_names: list[str], size: int = CIFAR_SIZE) -> tuple[Any, Any]:
    """ResNet-18 as stock transformers builds it (``AutoModelForImageClassification`` loads it, no custom code)."""
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    cfg = ResNetConfig(num_channels=3, embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                       layer_type="basic", num_labels=len(class_names), id2label=dict(enumerate(class_names)),
                       label2id={n: i for i, n in enumerate(class_names)})
    proc = ViTImageProcessor(size={"height": size, "width": size}, image_mean=CIFAR_MEAN, image_std=CIFAR_STD)
    return ResNetForImageClassification(cfg), proc


def device_name() -> str:
    """The accelerator (or CPU) the numbers were taken on, with torch's version."""
    import platform

    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{platform.machine()} CPU ({torch.get_num_threads()} threads), torch {torch.__version__}"


def cifar10_subset(per_class_train: int, per_class_test: int, path: Path = SHARED_CIFAR10) -> Any:
    """The first N images of each class of each split (a deterministic, balanced subset)."""
    import datasets

    if not path.exists():
        raise SystemExit(f"CIFAR-10 not found at {path}: these scripts need the shared data folder")
    full = datasets.load_dataset(str(path))

    def take(ds: Any, k: int) -> Any:
        labels = np.asarray(ds["label"])
        rows = np.concatenate([np.flatnonzero(labels == c)[:k] for c in range(10)])
        return ds.select(np.sort(rows))

    return datasets.DatasetDict({"train": take(full["train"], per_class_train),
                                 "test": take(full["test"], per_class_test)})


def small_resnet_and_processor(class_names: list[str], size: int = 32,
                               hidden: tuple[int, ...] = (32, 64, 128)) -> tuple[Any, Any]:
    """A stock transformers ResNet (loads with AutoModelForImageClassification, no custom code)."""
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    cfg = ResNetConfig(num_channels=3, embedding_size=hidden[0] // 2 or 16, hidden_sizes=list(hidden),
                       depths=[1] * len(hidden), layer_type="basic", num_labels=len(class_names),
                       id2label=dict(enumerate(class_names)), label2id={n: i for i, n in enumerate(class_names)})
    proc = ViTImageProcessor(size={"height": size, "width": size}, image_mean=CIFAR_MEAN, image_std=CIFAR_STD)
    return ResNetForImageClassification(cfg), proc


def cached_original(name: str, key: dict[str, Any], build: Any) -> Path:
    """Train once (``build(path)``), reuse afterwards: keyed by everything that shapes the model."""
    from hf_unlearn.hub import default_cache_dir

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = default_cache_dir() / "originals" / f"{name}-{digest}"
    if not (path / "model.safetensors").exists():
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        build(tmp)
        tmp.rename(path)
    return path


def compact_labels() -> list[str]:
    """The headline metrics' column labels (UA, RA, TA, MIA-efficacy, MIA-loss), from the metric registry."""
    from hf_unlearn.metrics import table_metrics

    return [m.label for m in table_metrics(compact=True)]


def compact_cells(runs: list[dict[str, Any]]) -> list[str]:
    """mean ± std of each headline metric over runs (each run's ``metrics`` is a report's metrics of one model)."""
    from hf_unlearn.metrics import table_metrics

    return [mean_std([r["metrics"].get(m.key) for r in runs]) for m in table_metrics(compact=True)]


def mean_std(values: list[float]) -> str:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.2f}"
    return f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f}"
