"""Training an original model on a whole training split (the demo, tests and scripts use it).

Unlearning is only meaningful against a model that was trained on ``D``
with a known recipe, because Retrain must repeat that recipe on ``D_r``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import DataSource
from .data import labelled_splits
from .engine import Engine
from .methods import get_method
from .methods.retrain import fit_classifier
from .metrics.core import accuracy


def train_original(model: Any, processor: Any, dataset: Any, recipe: dict[str, Any] | None = None, *,
                   seed: int = 0, source: DataSource | None = None, cache_dir: str | Path | None = None,
                   engine: Engine | None = None) -> dict[str, Any]:
    """Train ``model`` in place on the train split with ``recipe`` (Retrain's settings).

    Returns the recipe, the per-epoch losses and the test accuracy, for the
    model card of the original.
    """
    from accelerate.utils import set_seed

    source = source or DataSource(id="<in-memory>")
    settings = get_method("retrain").settings(recipe or {})
    splits = labelled_splits(dataset, source)
    num_channels = int(getattr(model.config, "num_channels", 3) or 3)
    train, test, normalizer = splits.tensors(processor, num_channels, Path(cache_dir) if cache_dir else None)
    engine = engine or Engine()
    set_seed(seed)
    losses = fit_classifier(engine, model, train, normalizer, settings, seed, "original")
    test_acc = accuracy(engine.predict(model, test, normalizer).argmax(1).numpy(), test.labels.cpu().numpy())
    names = splits.class_names
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {n: i for i, n in enumerate(names)}
    return {"recipe": asdict(settings), "losses": losses, "test_accuracy": test_acc}
