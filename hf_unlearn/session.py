"""Sources → splits, once per run or comparison; and, per seed, the shared Retrain reference and the untouched
model's evaluation.

A run with several seeds, and a comparison of several methods, load the model and the dataset once and build
the request's splits once (:func:`load`). Every seed then needs its Retrain reference: read from the reference
cache when an entry with the same key exists and is intact, else trained (from scratch or from the model's
pre-trained base, :mod:`hf_unlearn.reference`) and stored. A method never sees any of this: it gets tensors
and a model through :func:`hf_unlearn.methods.run_method`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .cancel import honours_cancel, raise_if_cancelled
from .config import DataSource, RunConfig
from .data import LabelledSplits, UnlearnData, check_model_labels, labelled_splits
from .engine import Engine, ProgressFn
from .errors import UnlearnError
from .forget import ForgetSpec
from .hub import (
    Resolved,
    check_model_repo,
    check_model_source,
    declared_base,
    default_cache_dir,
    load_dataset_dict,
    load_model,
    materialise_streams,
)
from .ledger import LEDGER_FILE, NO_LEDGER, Ledger, Request, content_digest, requests_served
from .ledger import find as find_ledger
from .methods import run_method
from .metrics.evaluation import Evaluation, evaluate, model_outputs
from .reference import (
    Reference,
    Start,
    as_stored,
    base_identity,
    load_base,
    reference_key,
    references,
    resolve_start,
    source_identity,
    store,
)
from .reference import load as load_entry

logger = logging.getLogger(__name__)

#: the name a model or dataset given as an object (not a folder or Hub id) is recorded under
IN_MEMORY = "<in-memory>"


@dataclass
class Loaded:
    """A configuration's sources, loaded and placed once: every seed (and, in a comparison, every method)
    runs on them, and shares the untouched model's evaluation and the Retrain reference of each seed."""

    config: RunConfig
    engine: Engine
    model: Any
    processor: Any
    splits: LabelledSplits
    data: UnlearnData
    data_info: dict[str, Any]
    model_res: Resolved
    data_res: Resolved
    token: str | None = None
    #: the model was handed over as an object: no model card, and its identity is its weights
    model_in_memory: bool = False
    #: seed → the Retrain reference (memory first; the cache across runs)
    references: dict[int, Reference | None] = field(default_factory=dict)
    #: seed → the untouched model's evaluation (against that seed's reference)
    originals: dict[int, Evaluation] = field(default_factory=dict)
    #: where decoded tensors are cached (another request's splits are built from the same tensors)
    tensor_cache: Path | None = None
    #: the requests the model already served (D_f is their union with this one)
    ledger: Ledger | None = None
    _start: tuple[Start, dict[str, Any] | None] | None = None
    _identity: dict[str, Any] | None = None

    @property
    def num_channels(self) -> int:
        return int(getattr(self.model.config, "num_channels", 3) or 3)

    def for_request(self, spec: ForgetSpec) -> Loaded:
        """The same sources, engine and Retrain start with another request's splits (a tuner's proxy request):
        nothing is loaded or decoded again, and the request's references and evaluations are its own."""
        data, info = self.splits.build(spec, self.processor, self.num_channels, cache_dir=self.tensor_cache,
                                       earlier=self.ledger)
        info["processes"] = self.engine.world
        return dataclasses.replace(self, config=dataclasses.replace(self.config, forget=spec),
                                   data=data.to(self.engine.device), data_info=info, references={}, originals={})

    def start(self) -> tuple[Start, dict[str, Any] | None]:
        """Retrain's starting point and, from a base, that base's identity (resolved once)."""
        if self._start is None:
            config = self.config
            declared = None
            if config.retrain_from != "scratch" and not config.retrain_base and not self.model_in_memory:
                declared = declared_base(config.model, self.model_res.local, self.token)
            start = resolve_start(config.retrain_from, config.retrain_base, declared,
                                  card_read=not self.model_in_memory)
            base = base_identity(start.base, self.token, start.named_by) if start.kind == "base" else None
            self._start = (start, base)
        return self._start

    def retrain_start(self, recipe: Any, seed: int) -> tuple[Any, Any]:
        """The network Retrain trains and its effective recipe: the model itself (re-initialised by the method)
        from scratch, or the pre-trained base with a new head drawn with ``seed`` (``init="given"``)."""
        start, base = self.start()
        if start.kind != "base":
            return self.model, dataclasses.replace(recipe, init="random")
        sample = self.data.normalizer(self.data.retain.pixels(slice(0, 1)))
        first = load_base(base, start.named_by, self.splits.class_names, sample, seed, self.token)
        return self.engine.place(first), dataclasses.replace(recipe, init="given")

    def start_record(self) -> dict[str, Any]:
        start, base = self.start()
        return start.record(base)

    def identity(self) -> dict[str, Any]:
        """The model's and the data's identity, for the reference cache's key (computed once)."""
        if self._identity is None:
            data = None if self.data_res.local else source_identity(self.data_res.to_dict())
            self._identity = {
                "model": {**source_identity(self.model_res.to_dict(), self.model, self.model_in_memory),
                          "reinit_head": self.config.options.reinit_head},
                "data": {"source": data, "config": self.config.data.config,
                         **self.splits.identity(self.processor, self.num_channels)}}
        return self._identity

    def reference_key(self, recipe: Any, seed: int) -> dict[str, Any]:
        """Everything that determines the Retrain reference of ``seed`` (:func:`hf_unlearn.reference.reference_key`)."""
        config, data, engine = self.config, self.data, self.engine
        start, base = self.start()
        test_rows = np.concatenate([data.test_rows, [-1], data.test_forget_rows if data.test_forget_rows is not None
                                    else np.empty(0, np.int64)])
        spec = config.forget
        # a retain subsample reaches Retrain only through BatchNorm re-estimation on it
        sample = [spec.retain_fraction, spec.seed] if spec.retain_fraction < 1 and recipe.recalibrate_bn else None
        return reference_key(**self.identity(), forget_rows=data.forget_rows, test_rows=test_rows,
                             recipe={**dataclasses.asdict(recipe), "retain_sample": sample},
                             start=start.identity(base), seed=seed,
                             execution={"device": engine.device.type, "processes": engine.world,
                                        "mixed_precision": config.options.mixed_precision,
                                        "eval_batch_size": config.options.eval_batch_size})

    def reference(self, seed: int) -> Reference | None:
        """Retrain for ``seed``: from memory, from the cache, or trained now (then cached); None without one."""
        config, engine = self.config, self.engine
        if config.retrain_settings is None:
            return None
        if seed in self.references:
            return self.references[seed]
        start, base = self.start()
        recipe = dataclasses.replace(config.retrain_settings, init="given" if start.kind == "base" else "random")
        key = self.reference_key(recipe, seed)
        cache = references() if config.options.cache_references else None
        ref = _read(cache, key, seed) if cache is not None else None
        name = f"retrain reference{self.seed_position(seed)}"
        if engine.all_agree(ref is not None):  # every process reads, or every process trains
            engine.stage(f"{name} (read from the cache)")
        else:
            engine.stage(name)
            ref = self._retrain(seed)
            if cache is not None and engine.is_main:
                ref.folder = _write(cache, key, ref)
            ref.trained = None  # the weights live in the cache entry's model/ folder
        ref.recipe = dataclasses.asdict(recipe)
        self.references[seed] = ref
        return ref

    def seed_position(self, seed: int) -> str:
        """" 2/3" for the second of a run's three seeds (nothing for a single seed), for the phase names."""
        seeds = list(self.config.options.run_seeds)
        return f" {seeds.index(seed) + 1}/{len(seeds)}" if len(seeds) > 1 and seed in seeds else ""

    def _retrain(self, seed: int) -> Reference:
        from accelerate.utils import set_seed

        set_seed(seed)  # the reference of a seed is the same whatever ran before it (its cache key says so)
        first, recipe = self.retrain_start(self.config.retrain_settings, seed)
        raise_if_cancelled()
        retrained = run_method(self.engine, first, self.data, "retrain", recipe, seed)
        outputs = as_stored(model_outputs(self.engine, retrained.model, self.data, seed))
        metrics = evaluate(outputs, outputs).metrics
        return Reference(metrics, outputs, retrained.seconds, cached=False, start=self.start_record(),
                         trained=retrained.model)

    def original(self, seed: int, reference: Reference | None) -> Evaluation:
        """The untouched model's evaluation for ``seed`` (once per seed; its logits released after)."""
        if seed not in self.originals:
            outputs = model_outputs(self.engine, self.model, self.data, seed)
            evaluation = evaluate(outputs, reference.outputs if reference else None)
            outputs.release_logits()
            self.originals[seed] = evaluation
        return self.originals[seed]

    def own_request(self) -> tuple[np.ndarray, list[int]]:
        """This request's own rows and forgotten classes (the forget set is the union when a ledger is read)."""
        data = self.data
        if data.request_rows is None:
            return data.forget_rows, list(data.forget_class_ids)
        return data.forget_rows[data.request_rows], list(data.request_class_ids or [])

    def served(self, method: str) -> Ledger:
        """The ledger after this run: the requests served before and this one, with its rows (``none`` returns
        the untouched model: it serves nothing, and the ledger stays as it was)."""
        from .methods import NONE
        from .report import forget_ids_digest

        before = self.ledger or Ledger(dataset_identity(self.config, self.data_res, self.splits))
        if method == NONE:
            return before
        rows, class_ids = self.own_request()
        request = Request(self.config.forget.kind, self.config.forget.describe(), [int(r) for r in rows], class_ids,
                          forget_ids_digest(rows), method,
                          {k: v for k, v in self.model_res.to_dict().items() if k in ("id", "commit")},
                          {"id": self.data_res.id, "commit": self.data_res.commit})
        return before.served(request)

    def record(self, reference: Reference) -> dict[str, Any]:
        """The report's record of a Retrain reference: its start (and base commit), the recipe it used, where
        that recipe came from (given whole, in part, or hf-unlearn's defaults), and whether it was cached."""
        return self.retrain_record(reference.start, reference.recipe, reference.cached, reference.seconds)

    def retrain_record(self, start: dict[str, Any], recipe: dict[str, Any], cached: bool,
                       seconds: float) -> dict[str, Any]:
        """A Retrain's record, a reference's or that of a run of Retrain itself (a reference report's)."""
        return {**start, "recipe": recipe, "recipe_source": self.config.recipe_source,
                "recipe_given": list(self.config.recipe_given or ()), "cached": cached, "seconds": seconds}


def _read(cache: Any, key: dict[str, Any], seed: int) -> Reference | None:
    """A cached reference, or None: no entry, a damaged one (removed by the cache), or one that vanished
    between the check and the read (another process evicted it)."""
    entry = cache.get(key)
    if entry is None:
        return None
    try:
        ref = load_entry(entry, seed)
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("the cached Retrain reference %s could not be read (%s): training it again", entry, exc)
        return None
    # metrics are functions of the stored outputs: computed now, so metrics registered since count too
    ref.metrics = evaluate(ref.outputs, ref.outputs).metrics
    return ref


def _write(cache: Any, key: dict[str, Any], ref: Reference) -> Path | None:
    """Store a reference; the cache is a saving, not a result: a full disk or a lost race only warns."""
    try:
        return cache.put(key, lambda folder: store(folder, ref.trained, ref.outputs, ref.metrics, ref.seconds,
                                                   ref.start))
    except OSError as exc:
        logger.warning("the Retrain reference could not be stored in the cache (%s); the run goes on", exc)
        return None


@honours_cancel
def load(config: RunConfig, *, model: Any = None, processor: Any = None, dataset: Any = None,
         token: str | None = None, progress: ProgressFn | None = None, independent: bool = False) -> Loaded:
    """Sources → splits, once: the dataset and model loaded, the request's splits built and placed.

    ``independent``: under ``accelerate launch`` each process runs whole models of its own (an audit's share
    of its runs), not a share of every batch (:class:`~hf_unlearn.engine.Engine`)."""
    options = config.options
    if progress is not None:
        progress({"stage": "preparing data"})
    if options.cache_references and config.retrain_settings is not None:
        references().check_limit()  # a bad HF_UNLEARN_CACHE_MB is an error before anything is loaded
    cache = Path(options.cache_dir) if options.cache_dir else default_cache_dir() / "tensors"
    if model is None:  # a wrong model id, or a repo that needs code, fails before its dataset is downloaded
        check_model_repo(config.model, check_model_source(config.model), token)
    dsd, data_res = _dataset(config.data, dataset, token)
    splits = labelled_splits(dsd, config.data)
    raise_if_cancelled()
    net, proc, model_res = _model(config, splits.class_names, model, processor, token)
    raise_if_cancelled()
    check_model_labels(net.config, splits.class_names)
    num_channels = int(getattr(net.config, "num_channels", 3) or 3)
    ledger = _ledger(config, model_res, data_res, splits, model is not None, token)
    data, data_info = splits.build(config.forget, proc, num_channels, cache_dir=cache, earlier=ledger)
    engine = Engine(options.mixed_precision, options.cpu, options.eval_batch_size, progress,
                    independent=independent)
    data_info["processes"] = engine.world
    return Loaded(config, engine, engine.place(net), proc, splits, data.to(engine.device), data_info, model_res,
                  data_res, token, model_in_memory=model is not None, tensor_cache=cache, ledger=ledger)


def dataset_identity(config: RunConfig, data_res: Resolved, splits: LabelledSplits) -> dict[str, Any]:
    """What a ledger's rows are positions in: the dataset, its commit where it has one, the training split."""
    return {"id": data_res.id, "config": config.data.config, "train_split": config.data.train_split,
            "commit": data_res.commit, "n_train": len(splits.train_labels),
            "content": content_digest(splits.train_labels)}


def _ledger(config: RunConfig, model_res: Resolved, data_res: Resolved, splits: LabelledSplits,
            in_memory: bool, token: str | None) -> Ledger | None:
    """The ledger this run continues (named, or the one beside a local model), checked against the dataset. A
    model whose report lists requests it served, with no ledger found, is refused: their rows would come back."""
    model_dir = config.model.id if model_res.local and not in_memory else None
    path = find_ledger(config.options.ledger, model_dir)
    if path is None:
        served = 0 if in_memory or config.options.ledger == NO_LEDGER else \
            requests_served(config.model.id, model_res.local, model_res.commit, token)
        if served:
            raise UnlearnError(f"this model has served {served} deletion request{'s' if served > 1 else ''} (its "
                               f"report's lineage), but no {LEDGER_FILE} was found beside it: pass --ledger PATH "
                               "(the ledger its run wrote) so that they stay forgotten, or --ledger none to start a "
                               "new lineage from it")
        return None
    ledger = Ledger.load(path)
    ledger.check_dataset(dataset_identity(config, data_res, splits), str(path))
    return ledger


def _dataset(source: DataSource, dataset: Any, token: str | None) -> tuple[Any, Resolved]:
    """The ``DatasetDict`` to unlearn from: loaded from the source, or the caller's (a stream is materialised)."""
    if dataset is None:
        return load_dataset_dict(source, token=token)
    import datasets

    if isinstance(dataset, (datasets.IterableDataset, datasets.IterableDatasetDict)):  # streamed by the caller
        dataset = materialise_streams(dataset if isinstance(dataset, datasets.IterableDatasetDict)
                                      else {source.train_split: dataset})
    return dataset, Resolved(source.id, None, None, True)


def _model(config: RunConfig, class_names: list[str], model: Any, processor: Any,
           token: str | None) -> tuple[Any, Any, Resolved]:
    """The model and processor: loaded from the source (with a new head under ``reinit_head``), or the caller's."""
    if model is None:
        head = {"num_labels": len(class_names), "id2label": dict(enumerate(class_names))} \
            if config.options.reinit_head else {}
        return load_model(config.model, token=token, checked=True, **head)
    if processor is None:
        raise UnlearnError("pass the model's image processor with processor=... when giving a loaded model")
    name = getattr(getattr(model, "config", None), "name_or_path", "") or IN_MEMORY
    return model, processor, Resolved(name, None, None, True)
