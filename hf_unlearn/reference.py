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
from .config import RETRAIN_FROM
from .errors import UnlearnError
from .metrics.outputs import EvalOutputs, SplitOutputs

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

    def identity(self, resolved: dict[str, Any] | None = None) -> dict[str, Any]:
        """What of the start determines Retrain (for the cache's key): not who named the base."""
        return {"from": self.kind, "base": resolved if self.kind == "base" else None}


def resolve_start(retrain_from: str, retrain_base: str | None, declared: str | None,
                  card_read: bool = True) -> Start:
    """Retrain's starting point from the setting, an explicit base and the model card's ``base_model``.

    ``auto`` takes the base when the model declares one (or one is given), else starts from scratch;
    ``base`` without any base is an error, never a silent fall-back to scratch. ``card_read=False``: the
    model was given in memory, so there was no card to read.
    """
    if retrain_from not in RETRAIN_FROM:
        raise UnlearnError(f"retrain_from must be one of {', '.join(RETRAIN_FROM)}, got '{retrain_from}'")
    base, named_by = (retrain_base, "retrain_base") if retrain_base else (declared, "model card")
    if retrain_from == "scratch":
        return Start("scratch")
    if not base:
        if retrain_from == "base":
            where = "the model card names no base_model" if card_read else \
                "a model given in memory has no model card to name its base"
            raise UnlearnError(f"retrain_from=base, but {where}: give the pre-trained checkpoint with "
                               "retrain_base (--retrain-base), or use retrain_from=scratch")
        return Start("scratch")
    return Start("base", base, named_by)


#: where a model keeps its classification head when its backbone is not under ``base_model_prefix`` (CLIP, SigLIP)
HEAD_NAMES = ("classifier", "head", "fc", "score")


def _owning(modules: Any) -> list[nn.Module]:
    """The modules that hold parameters themselves (a head's Linear, not the Sequential around it)."""
    return [m for m in modules if next(m.parameters(recurse=False), None) is not None]


def head_modules(model: nn.Module) -> list[nn.Module]:
    """The classification head's modules: everything outside the backbone (``base_model_prefix``), the timm
    model's classifier, or the ``classifier``/``head``/``fc``/``score`` attribute; ``[]`` when none can be told.

    Never "every module": a model whose backbone cannot be found must not be reset whole and called pre-trained.
    """
    prefix = getattr(model, "base_model_prefix", "") or ""
    backbone = getattr(model, prefix, None) if prefix else None
    if isinstance(backbone, nn.Module) and backbone is not model:
        inside = {id(m) for m in backbone.modules()}
        head = _owning(m for m in model.modules() if id(m) not in inside)
        if head:
            return head
        get_classifier = getattr(backbone, "get_classifier", None)  # timm through transformers
        classifier = get_classifier() if callable(get_classifier) else None
        return _owning(classifier.modules()) if isinstance(classifier, nn.Module) else []
    for name in HEAD_NAMES:
        module = getattr(model, name, None)
        if isinstance(module, nn.Module) and module is not model:
            return _owning(module.modules())
    return []


def fresh_head(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise the classification head, drawn with ``seed``, the way the architecture initialises it.

    Retrain from a base must not inherit a head trained on anything: its head is new, as the fine-tune's was.
    transformers' own ``_init_weights`` draws it (it skips modules marked loaded, so the marks are cleared
    first); a module it does not reach (a timm head) is drawn by its ``reset_parameters``. The head is filled
    with NaN first, so a module no initialiser reached is an error, never a head left as it was.
    """
    head = head_modules(model)
    if not head:
        raise UnlearnError(f"cannot tell the classification head of {type(model).__name__} from its backbone, so "
                           "Retrain cannot start from its base: use retrain_from=scratch")
    def undrawn(module: nn.Module) -> bool:
        return any(bool(torch.isnan(p).any()) for p in module.parameters(recurse=False))

    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.no_grad():  # NaN marks what no initialiser reached
            for module in head:
                for p in module.parameters(recurse=False):
                    p.fill_(float("nan"))
        init = getattr(model, "_init_weights", None)
        if callable(init):
            for module in head:
                module._is_hf_initialized = False
                for p in module.parameters(recurse=False):
                    p._is_hf_initialized = False
                init(module)
        for module in head:
            if undrawn(module) and hasattr(module, "reset_parameters"):
                module.reset_parameters()
    finally:
        torch.random.set_rng_state(gen_state)
    if any(undrawn(module) for module in head):
        raise UnlearnError(f"could not re-initialise the classification head of {type(model).__name__}: "
                           "use retrain_from=scratch")
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


def source_identity(resolved: dict[str, Any], model: nn.Module | None = None, in_memory: bool = False
                    ) -> dict[str, Any]:
    """What a source is, for a cache key: a Hub id at its commit, a local folder's content digest, or the
    digest of the loaded weights (a model given in memory, or a Hub model whose commit could not be resolved)."""
    if in_memory:
        return {"digest": state_digest(model) if model is not None else None}
    if not resolved.get("local"):
        if resolved.get("commit"):
            return {"id": resolved.get("id"), "commit": resolved["commit"]}
        return {"id": resolved.get("id"), "digest": state_digest(model) if model is not None else None}
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
    #: the recipe it was trained with (``init`` says from where)
    recipe: dict[str, Any] = field(default_factory=dict)
    #: the retrained network while it is being stored (its weights then live in the cache entry's ``model/``)
    trained: nn.Module | None = field(default=None, repr=False)


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


def _where(named_by: str | None) -> str:
    return "the model card's base_model" if named_by == "model card" else "retrain_base"


def _cached_commit(base: str) -> str | None:
    """The commit of a base already in the local Hub cache (offline runs resolve it there)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(base, "config.json", local_files_only=True)).parent.name
    except Exception:  # noqa: BLE001 - not cached
        return None


def base_identity(base: str, token: str | None, named_by: str | None) -> dict[str, Any]:
    """The base checkpoint Retrain starts from, resolved: a Hub id at its commit, or a local folder's digest.

    Resolved before anything is trained, and without downloading weights, so the key of a cached reference
    is known up front and a base that cannot be found is one line naming where it was named. Offline
    (``HF_HUB_OFFLINE``), a base in the local Hub cache resolves to the commit it was cached at.
    """
    import huggingface_hub.constants

    from .hub import check_source, hub_error_message, with_retries

    try:
        local = check_source("model", base, "a pre-trained model (Hub id or folder)")
    except UnlearnError as exc:
        raise UnlearnError(f"Retrain's base '{base}' ({_where(named_by)}) is not usable: {exc}") from None
    if local:
        return {"id": base, "local": True, "commit": None, "digest": content_digest(base)}
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        commit = _cached_commit(base)
        if commit is None:
            raise UnlearnError(f"Retrain's base '{base}' ({_where(named_by)}) is not in the local Hub cache and "
                               "the Hub is offline (HF_HUB_OFFLINE): download it once online, give a folder with "
                               "retrain_base, or use retrain_from=scratch")
        return {"id": base, "local": False, "commit": commit}
    from huggingface_hub import HfApi

    try:
        commit = with_retries(lambda: HfApi(token=token).model_info(base).sha, "base model", base)
    except UnlearnError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line naming the base and the way out
        raise UnlearnError(f"Retrain's base '{base}' ({_where(named_by)}): "
                           f"{hub_error_message(exc, 'model', base, None)}; give another with retrain_base "
                           "(--retrain-base) or use retrain_from=scratch") from None
    return {"id": base, "local": False, "commit": commit}


def load_base(identity: dict[str, Any], named_by: str | None, class_names: list[str], sample: torch.Tensor,
              seed: int, token: str | None) -> nn.Module:
    """The base checkpoint's weights with a new head for the dataset's labels, drawn with ``seed``.

    ``sample``: one normalised input as the run's processor makes it; the base must take it (same channels,
    an image size its embeddings accept), else the error says so before any training.
    """
    from .config import ModelSource
    from .engine import forward_logits
    from .hub import load_model

    labels = {"num_labels": len(class_names), "id2label": dict(enumerate(class_names))}
    way_out = "give another with retrain_base (--retrain-base) or use retrain_from=scratch"
    try:
        model, _, _ = load_model(ModelSource(identity["id"], identity.get("commit")), token=token,
                                 processor=False, **labels)
    except UnlearnError as exc:
        raise UnlearnError(f"Retrain's base '{identity['id']}' ({_where(named_by)}) could not be loaded: {exc}; "
                           f"{way_out}") from None
    fresh_head(model, seed)
    model.eval()
    try:
        with torch.no_grad():
            forward_logits(model, sample.to(next(model.parameters()).device))
    except Exception as exc:  # noqa: BLE001 - any shape or dtype mismatch means another architecture
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnlearnError(f"Retrain's base '{identity['id']}' ({_where(named_by)}) cannot take this dataset's "
                           f"images as the model's processor makes them ({first[:160]}); {way_out}") from None
    return model
