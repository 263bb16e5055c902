"""The gold standard: where Retrain starts, what determines it, and its cached result.

Every number a run reports is a distance to Retrain, the model trained
without the forget set. For a model trained from scratch that means a random
re-initialisation; for a fine-tune of a pre-trained checkpoint (nearly every
image classifier on the Hub) it means fine-tuning that same checkpoint on
D_r, with a new head: a network trained from scratch is a different, much
weaker model and a distance to it measures nothing (:func:`resolve_start`).

A Retrain costs as much as the original training, and the same request comes
back from every method, seed, CLI call and app session, so its result (the
model, its metrics and its per-example outputs) is cached under a key made of
everything that determines it (:func:`reference_key`, :class:`~hf_unlearn.cache.FolderCache`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .cache import FolderCache
from .errors import UnlearnError
from .metrics.outputs import EvalOutputs, SplitOutputs

#: Retrain's starting points (``RunConfig.retrain_from``)
STARTS = ("auto", "base", "scratch")
#: the layout of a stored reference; part of every key, so a change of layout never reads an old entry
FORMAT = 1
#: the splits whose logits a stored reference keeps (the rest keep predictions, confidences and losses)
LOGIT_SPLITS = ("forget", "test", "test_forget")


@dataclass(frozen=True)
class Start:
    """Where Retrain starts: ``scratch`` (random initialisation) or ``base`` (a pre-trained checkpoint)."""

    kind: str
    base: str | None = None
    #: where the base was named: "model card" (its ``base_model``) or "retrain_base" (given)
    named_by: str | None = None

    def record(self, resolved: dict[str, Any] | None = None) -> dict[str, Any]:
        """The report's record: where Retrain started and, from a base, which checkpoint at which commit."""
        return {"from": self.kind, "base": resolved if self.kind == "base" else None, "named_by": self.named_by}


def resolve_start(retrain_from: str, retrain_base: str | None, declared: str | None) -> Start:
    """Retrain's starting point from the setting, an explicit base and the model card's ``base_model``.

    ``auto`` takes the base when the model declares one (or one is given), else starts from scratch;
    ``base`` without any base is an error, never a silent fall-back to scratch.
    """
    if retrain_from not in STARTS:
        raise UnlearnError(f"retrain_from must be one of {', '.join(STARTS)}, got '{retrain_from}'")
    base, named_by = (retrain_base, "retrain_base") if retrain_base else (declared, "model card")
    if retrain_from == "scratch":
        return Start("scratch")
    if not base:
        if retrain_from == "base":
            raise UnlearnError("retrain_from=base, but the model card names no base_model: give the pre-trained "
                               "checkpoint with retrain_base (--retrain-base), or use retrain_from=scratch")
        return Start("scratch")
    return Start("base", base, named_by)


def fresh_head(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise the classification head (every module outside the backbone), drawn with ``seed``.

    Retrain from a base must not inherit a head trained on anything: its head is new, as the fine-tune's was.
    """
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    inside = {id(m) for m in backbone.modules()} if isinstance(backbone, nn.Module) else set()
    head = [m for m in model.modules() if id(m) not in inside and hasattr(m, "reset_parameters")]
    if not head and hasattr(backbone, "get_classifier"):  # timm through transformers: the head is in the backbone
        head = [m for m in backbone.get_classifier().modules() if hasattr(m, "reset_parameters")]
    if not head:
        raise UnlearnError(f"cannot find the classification head of {type(model).__name__} to start Retrain "
                           "from its base: use retrain_from=scratch")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in head:
            module.reset_parameters()
    finally:
        torch.random.set_rng_state(gen_state)
    return model


def content_digest(folder: str | Path) -> str:
    """SHA-256 over a local model folder's weight and config files (its identity without a Hub commit)."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.suffix in (".safetensors", ".json", ".bin"):
            h.update(path.name.encode())
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def state_digest(model: nn.Module) -> str:
    """SHA-256 of a loaded model's parameters and buffers (an in-memory model's identity)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def source_identity(resolved: dict[str, Any], model: nn.Module | None = None) -> dict[str, Any]:
    """What a source is, for a cache key: a Hub id at its commit, or a local folder's content digest."""
    if not resolved.get("local"):
        return {"id": resolved.get("id"), "commit": resolved.get("commit") or resolved.get("revision")}
    path = Path(str(resolved.get("id")))
    if path.is_dir():
        return {"digest": content_digest(path)}
    return {"digest": state_digest(model) if model is not None else None}


@dataclass
class Reference:
    """A Retrain reference: its metrics, per-example outputs, seconds, and whether it came from the cache."""

    metrics: dict[str, Any]
    outputs: EvalOutputs
    seconds: float
    cached: bool
    folder: Path | None = None
    start: dict[str, Any] = field(default_factory=dict)
    #: the retrained network while it is being stored (then None: :meth:`model` reads it back)
    trained: nn.Module | None = field(default=None, repr=False)

    def model(self) -> nn.Module:
        """The retrained model, read back from its cache entry."""
        from transformers import AutoModelForImageClassification

        if self.folder is None:
            raise UnlearnError("this reference was not stored, so its model cannot be read back")
        return AutoModelForImageClassification.from_pretrained(self.folder / "model")


def cache_root() -> Path:
    from .hub import default_cache_dir

    return default_cache_dir() / "references"


def store(entry: Path, model: nn.Module, outputs: EvalOutputs, metrics: dict[str, Any], seconds: float,
          start: dict[str, Any]) -> None:
    """Write a reference into a (temporary) cache folder: safetensors weights, NumPy arrays, JSON; no pickle."""
    model.save_pretrained(entry / "model")
    arrays: dict[str, np.ndarray] = {}
    for name, split in outputs.splits.items():
        arrays[f"{name}/labels"] = split.labels
        arrays[f"{name}/predictions"] = split.predictions
        arrays[f"{name}/true_prob"] = split.true_prob
        arrays[f"{name}/loss"] = split.loss
        if split.logits is not None and name in LOGIT_SPLITS:
            arrays[f"{name}/logits"] = split.logits
    np.savez(entry / "outputs.npz", **arrays)
    (entry / "reference.json").write_text(json.dumps(
        {"metrics": metrics, "seconds": seconds, "num_classes": outputs.num_classes, "start": start}))


def load(entry: Path, seed: int) -> Reference:
    """A stored reference (the cache checked every file against its manifest already)."""
    meta = json.loads((entry / "reference.json").read_text())
    with np.load(entry / "outputs.npz", allow_pickle=False) as arrays:
        names = sorted({k.split("/")[0] for k in arrays.files})
        splits = {n: stored_split(arrays, n) for n in names}
    outputs = EvalOutputs(splits, int(meta["num_classes"]), seed)
    return Reference(meta["metrics"], outputs, float(meta["seconds"]), True, entry, meta.get("start", {}))


def stored_split(arrays: Any, name: str) -> SplitOutputs:
    """One split of a stored reference: its logits where they were kept, else the values derived from them."""
    split = SplitOutputs.from_values(arrays[f"{name}/labels"], arrays[f"{name}/predictions"],
                                     arrays[f"{name}/true_prob"], arrays[f"{name}/loss"])
    if f"{name}/logits" in arrays.files:
        split.logits = arrays[f"{name}/logits"]
    return split


def as_stored(outputs: EvalOutputs) -> EvalOutputs:
    """The outputs as a stored reference holds them: logits only on :data:`LOGIT_SPLITS`.

    A freshly trained reference is turned into this form before any metric reads it, so a metric gives the
    same value against a reference built now and one read back from the cache.
    """
    for name, split in outputs.splits.items():
        if name not in LOGIT_SPLITS:
            split.release_logits()
    return outputs


def references() -> FolderCache:
    """The reference cache (``<hf-unlearn cache>/references``)."""
    return FolderCache(cache_root())


def reference_key(*, model: dict[str, Any], data: dict[str, Any], forget_rows: np.ndarray, test_rows: np.ndarray,
                  recipe: dict[str, Any], start: dict[str, Any], seed: int,
                  execution: dict[str, Any]) -> dict[str, Any]:
    """Everything that determines a Retrain reference, as the cache's key.

    ``model``: the original's identity (a Hub commit, or a content digest of a folder or of loaded weights), as
    its architecture and labels define the retrained network; ``data``: the dataset's commit and the content
    fingerprints of both splits' tensors; the forget and test rows (digests, not the rows); the recipe; the
    start (scratch, or the base's identity); the seed; how it ran (device, precision, processes, evaluation
    batch size); and the library's version and this layout's :data:`FORMAT`.
    """
    from . import __version__

    def rows_digest(rows: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(np.asarray(rows, dtype=np.int64)).tobytes()).hexdigest()

    return {"format": FORMAT, "version": __version__, "model": model, "data": data,
            "forget_rows": rows_digest(forget_rows), "test_rows": rows_digest(test_rows), "recipe": recipe,
            "start": start, "seed": int(seed), "execution": execution}


def base_identity(base: str, token: str | None, named_by: str | None) -> dict[str, Any]:
    """The base checkpoint Retrain starts from, resolved: a Hub id at its commit, or a local folder's digest.

    Resolved before anything is trained, and without downloading weights, so the key of a cached reference
    is known up front and a base that cannot be found is one line naming where it was named.
    """
    from .hub import check_source, hub_error_message, with_retries

    where = "the model card's base_model" if named_by == "model card" else "retrain_base"
    try:
        local = check_source("model", base, "a pre-trained model (Hub id or folder)")
    except UnlearnError as exc:
        raise UnlearnError(f"Retrain's base '{base}' ({where}) is not usable: {exc}") from None
    if local:
        return {"id": base, "local": True, "commit": None, "digest": content_digest(base)}
    from huggingface_hub import HfApi

    try:
        commit = with_retries(lambda: HfApi(token=token).model_info(base).sha, "base model", base)
    except UnlearnError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line naming the base and the way out
        raise UnlearnError(f"Retrain's base '{base}' ({where}): {hub_error_message(exc, 'model', base, None)}; "
                           "give another with retrain_base (--retrain-base) or use retrain_from=scratch") from None
    return {"id": base, "local": False, "commit": commit}


def load_base(identity: dict[str, Any], class_names: list[str], num_channels: int, seed: int,
              token: str | None) -> nn.Module:
    """The base checkpoint's weights with a new head for the dataset's labels, drawn with ``seed``."""
    from .config import ModelSource
    from .hub import load_model

    labels = {"num_labels": len(class_names), "id2label": dict(enumerate(class_names))}
    model, _, _ = load_model(ModelSource(identity["id"], identity.get("commit")), token=token, processor=False,
                             **labels)
    channels = int(getattr(model.config, "num_channels", num_channels) or num_channels)
    if channels != num_channels:
        raise UnlearnError(f"Retrain's base '{identity['id']}' takes {channels}-channel images, the model to "
                           f"unlearn {num_channels}: they are not the same architecture; use retrain_from=scratch")
    return fresh_head(model, seed)
