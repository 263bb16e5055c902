"""``unlearn()`` and ``run()``: sources → splits → method → metrics → report, in that order only.

:func:`run` executes a :class:`~hf_unlearn.config.RunConfig`; the CLI and
the app build one and call it. :func:`unlearn` is the keyword API over it:
its keywords are the configuration's fields (its signature is generated from
them), anything else is a setting of the method.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .cancel import honours_cancel, raise_if_cancelled
from .config import TOP_LEVEL, DataSource, RunConfig, config_keywords
from .data import LabelledSplits, UnlearnData, check_model_labels, labelled_splits
from .engine import Engine, ProgressFn
from .fields import default_of
from .hub import Resolved, declared_base, default_cache_dir, load_dataset_dict, load_model, materialise_streams
from .methods import get_method, run_method
from .metrics.evaluation import Evaluation, evaluate, model_outputs
from .metrics.registry import avg_gap
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
from .reference import load as load_reference_entry
from .report import UnlearnReport, forget_record
from .seeds import combine_seeds


@dataclass
class UnlearnResult:
    """The unlearned model, its processor and report; unpacks as ``model, report``."""

    model: Any
    processor: Any
    report: UnlearnReport
    evaluations: dict[str, Evaluation] = field(default_factory=dict)
    data: UnlearnData | None = None
    original_model: Any = None
    artifacts: dict[str, Any] = field(default_factory=dict)
    #: with several seeds: each seed's own result (the first is this one's model; the report combines them)
    seed_results: list[UnlearnResult] = field(default_factory=list)

    def __iter__(self):
        return iter((self.model, self.report))

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        """Push to the Hub in one commit (see :func:`hf_unlearn.push_to_hub`)."""
        from .push import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def save(self, output_dir: str | Path, overwrite: bool = False) -> Path:
        from .output import save_checkpoint

        return save_checkpoint(output_dir, self.model, self.processor, self.report, overwrite=overwrite,
                               mask=self.artifacts.get("mask"))


IN_MEMORY = "<in-memory>"


def unlearn(model: Any, dataset: Any, forget: Any, method: str = "ft", *, processor: Any = None,
            token: str | None = None, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
            **keywords: Any) -> UnlearnResult:
    """Make ``model`` forget part of ``dataset`` with ``method`` and measure the result.

    ``model``: a local directory, a Hub repo id or a loaded transformers model
    (then pass ``processor``). ``dataset``: a local folder, parquet file, Hub id
    or a ``DatasetDict``. ``forget``: a :class:`ForgetSpec` or a class.
    ``reference``: ``"retrain"`` to also retrain from scratch on D_r (the gold
    standard, for Avg.Gap and RTE), or a report / report path of an earlier
    Retrain. ``streaming``: read a folder or Hub dataset as streams, written
    once to an on-disk table (for datasets larger than memory). The other
    configuration keywords are in the signature; remaining keyword arguments
    are the method's settings (``hf_unlearn.get_method(name).describe_settings()``).
    """
    config = RunConfig.from_keywords(model=model if isinstance(model, str) else IN_MEMORY,
                                     dataset=dataset if isinstance(dataset, str) else IN_MEMORY,
                                     forget=forget, method=method, **keywords)
    return run(config, model=None if isinstance(model, str) else model, processor=processor,
               dataset=None if isinstance(dataset, str) else dataset, token=token, progress=progress, cancel=cancel)


def _signature() -> inspect.Signature:
    """``unlearn``'s signature with every configuration keyword spelled out (``help(unlearn)``, IDEs)."""
    own = inspect.signature(unlearn).parameters
    fixed = [p for name, p in own.items() if name != "keywords"]
    taken = set(own)
    generated = [inspect.Parameter(kw, inspect.Parameter.KEYWORD_ONLY, default=default_of(f))
                 for kw, (_, f) in config_keywords().items() if kw not in taken]
    top = {f.name: f for f in dataclasses.fields(RunConfig) if f.name in TOP_LEVEL and f.name not in taken}
    extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=default_of(f)) for n, f in top.items()]
    return inspect.Signature([*fixed, *generated, *extra, own["keywords"]])


unlearn.__signature__ = _signature()  # type: ignore[attr-defined]


@dataclass
class Loaded:
    """A configuration's sources, loaded and placed once: every seed (and, in a comparison, every method)
    runs on them, and shares the original's evaluation and the Retrain reference of each seed."""

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
    #: seed → the Retrain reference (memory first; the cache across runs)
    references: dict[int, Reference | None] = field(default_factory=dict)
    #: seed → the original model's evaluation (against that seed's reference)
    originals: dict[int, Evaluation] = field(default_factory=dict)
    _start: tuple[Start, dict[str, Any] | None] | None = None
    _identity: dict[str, Any] | None = None

    def start(self) -> tuple[Start, dict[str, Any] | None]:
        """Retrain's starting point and, from a base, that base's identity (resolved once)."""
        if self._start is None:
            config = self.config
            declared = None
            if config.retrain_from != "scratch" and not config.retrain_base and not self.model_res.id == IN_MEMORY:
                declared = declared_base(config.model, self.model_res.local, self.token)
            start = resolve_start(config.retrain_from, config.retrain_base, declared)
            base = base_identity(start.base, self.token, start.named_by) if start.kind == "base" else None
            self._start = (start, base)
        return self._start

    def identity(self) -> dict[str, Any]:
        """The model's and the data's identity, for the reference cache's key (computed once)."""
        if self._identity is None:
            num_channels = int(getattr(self.model.config, "num_channels", 3) or 3)
            self._identity = {
                "model": {**source_identity(self.model_res.to_dict(), self.model),
                          "reinit_head": self.config.options.reinit_head},
                "data": {"source": source_identity(self.data_res.to_dict()) if not self.data_res.local else None,
                         "config": self.config.data.config, **self.splits.identity(self.processor, num_channels)}}
        return self._identity

    def reference(self, seed: int) -> Reference | None:
        """Retrain for ``seed``: from memory, from the cache, or trained now (then cached); None without one."""
        config, engine, data = self.config, self.engine, self.data
        if config.retrain_settings is None:
            return None
        if seed in self.references:
            return self.references[seed]
        start, base = self.start()
        recipe = dataclasses.replace(config.retrain_settings, init="given" if start.kind == "base" else "random")
        test_rows = np.concatenate([data.test_rows, [-1], data.test_forget_rows if data.test_forget_rows is not None
                                    else np.empty(0, np.int64)])
        key = reference_key(**self.identity(), forget_rows=data.forget_rows, test_rows=test_rows,
                            recipe=dataclasses.asdict(recipe), start=start.record(base), seed=seed,
                            execution={"device": engine.device.type, "processes": engine.world,
                                       "mixed_precision": config.options.mixed_precision,
                                       "eval_batch_size": config.options.eval_batch_size})
        cache = references() if config.options.cache_references else None
        entry = cache.get(key) if cache is not None else None
        if engine.all_agree(entry is not None):
            ref = load_reference_entry(entry, seed)
            # metrics are functions of the stored outputs: computed now, so metrics registered since count too
            ref.metrics = evaluate(ref.outputs, ref.outputs).metrics
        else:
            ref = self._retrain(recipe, start, base, seed)
            if cache is not None and engine.is_main:
                ref.folder = cache.put(key, lambda folder: store(folder, ref.trained, ref.outputs, ref.metrics,
                                                                 ref.seconds, ref.start))
            ref.trained = None  # the weights live in the cache entry (Reference.model reads them back)
        self.references[seed] = ref
        return ref

    def _retrain(self, recipe: Any, start: Start, base: dict[str, Any] | None, seed: int) -> Reference:
        engine = self.engine
        if start.kind == "base":
            num_channels = int(getattr(self.model.config, "num_channels", 3) or 3)
            first = engine.place(load_base(base, self.splits.class_names, num_channels, seed, self.token))
        else:
            first = self.model
        raise_if_cancelled()
        retrained = run_method(engine, first, self.data, "retrain", recipe, seed)
        outputs = as_stored(model_outputs(engine, retrained.model, self.data, seed))
        metrics = evaluate(outputs, outputs).metrics
        return Reference(metrics, outputs, retrained.seconds, cached=False, start=start.record(base),
                         trained=retrained.model)

    def original(self, seed: int, reference: Reference | None) -> Evaluation:
        """The untouched model's evaluation for ``seed`` (once per seed; its logits released after)."""
        if seed not in self.originals:
            outputs = model_outputs(self.engine, self.model, self.data, seed)
            evaluation = evaluate(outputs, reference.outputs if reference else None)
            outputs.release_logits()
            self.originals[seed] = evaluation
        return self.originals[seed]


@honours_cancel
def load(config: RunConfig, *, model: Any = None, processor: Any = None, dataset: Any = None,
         token: str | None = None, progress: ProgressFn | None = None) -> Loaded:
    """Sources → splits, once: the dataset and model loaded, the request's splits built and placed."""
    options = config.options
    cache = Path(options.cache_dir) if options.cache_dir else default_cache_dir() / "tensors"
    dsd, data_res = _dataset(config.data, dataset, token)
    splits = labelled_splits(dsd, config.data)
    raise_if_cancelled()
    net, proc, model_res = _model(config, splits.class_names, model, processor, token)
    raise_if_cancelled()
    check_model_labels(net.config, splits.class_names)
    num_channels = int(getattr(net.config, "num_channels", 3) or 3)
    data, data_info = splits.build(config.forget, proc, num_channels, cache_dir=cache)
    engine = Engine(options.mixed_precision, options.cpu, options.eval_batch_size, progress)
    data_info["processes"] = engine.world
    return Loaded(config, engine, engine.place(net), proc, splits, data.to(engine.device), data_info, model_res,
                  data_res, token)


@honours_cancel
def run(config: RunConfig, *, model: Any = None, processor: Any = None, dataset: Any = None,
        token: str | None = None, progress: ProgressFn | None = None,
        cancel: threading.Event | None = None) -> UnlearnResult:
    """Execute ``config``. ``model`` / ``dataset``: already loaded objects to use instead of the sources' ids.

    With several seeds (``options.seeds``) each seed runs the method against its own Retrain reference; the
    result is the first seed's model, with a report of every metric's mean ± std and each seed's values.
    """
    loaded = load(config, model=model, processor=processor, dataset=dataset, token=token, progress=progress)
    results = [run_seed(loaded, config.method, config.settings, seed) for seed in config.options.run_seeds]
    if len(results) == 1:
        return results[0]
    first = results[0]
    first.report = combine_seeds([r.report for r in results])
    first.seed_results = results
    return first


def run_seed(loaded: Loaded, method_name: str, settings: Any, seed: int) -> UnlearnResult:
    """One method with one seed on loaded sources: method → metrics (against that seed's Retrain) → report."""
    from accelerate.utils import set_seed

    config, engine, data = loaded.config, loaded.engine, loaded.data
    method = get_method(method_name)
    set_seed(seed)
    edited = run_method(engine, loaded.model, data, method, settings, seed)
    unlearned = model_outputs(engine, edited.model, data, seed)
    reference = loaded.reference(seed)
    ref_report = config.reference_report
    evaluations = {"original": loaded.original(seed, reference),
                   "unlearned": evaluate(unlearned, reference.outputs if reference else None)}
    unlearned.release_logits()  # the metrics are computed: what stays with the result is what the app plots
    if reference is not None:
        evaluations["retrain"] = Evaluation(reference.metrics, reference.outputs)
    metrics: dict[str, Any] = {name: ev.metrics for name, ev in evaluations.items()}
    if ref_report is not None:
        metrics["retrain"] = ref_report.metrics.get("unlearned")
    gaps = {k: avg_gap(metrics[k], metrics["retrain"]) for k in metrics} if metrics.get("retrain") else None

    _name_labels(edited.model, loaded.splits.class_names)
    report = UnlearnReport(
        method=method.name,
        settings=dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else dict(settings or {}),
        forget=forget_record(config.forget, data.forget_rows, data.forget_class_ids, loaded.splits.class_names),
        sources={"model": loaded.model_res.to_dict(),
                 "dataset": {**loaded.data_res.to_dict(), "config": config.data.config}},
        data=dict(loaded.data_info),
        class_names=loaded.splits.class_names,
        seed=seed,
        metrics=metrics,
        avg_gap=gaps,
        rte_s=edited.seconds,
        retrain_s=reference.seconds if reference else (ref_report.rte_s if ref_report else None),
        reference=("retrain" if reference is not None else (str(config.reference) if ref_report else None)),
        retrain=reference_record(config, reference) if reference is not None else
        (ref_report.retrain if ref_report is not None else None),
    )
    if reference is not None:
        report.settings["retrain_reference"] = dataclasses.asdict(config.retrain_settings)
    if "mask" in edited.artifacts:
        mask = edited.artifacts["mask"]
        report.settings["mask"] = dict(mask.meta, selected_fraction=mask.fraction())
    return UnlearnResult(edited.model, loaded.processor, report, evaluations, data, original_model=loaded.model,
                         artifacts=edited.artifacts)


def reference_record(config: RunConfig, reference: Reference) -> dict[str, Any]:
    """The report's record of the Retrain reference: its start (and base commit), recipe and its source."""
    return {**reference.start, "recipe": dataclasses.asdict(config.retrain_settings),
            "recipe_source": config.recipe_source, "cached": reference.cached, "seconds": reference.seconds}


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
    from .errors import UnlearnError

    if model is None:
        head = {"num_labels": len(class_names), "id2label": dict(enumerate(class_names))} \
            if config.options.reinit_head else {}
        return load_model(config.model, token=token, **head)
    if processor is None:
        raise UnlearnError("pass the model's image processor with processor=... when giving a loaded model")
    name = getattr(getattr(model, "config", None), "name_or_path", "") or IN_MEMORY
    return model, processor, Resolved(name, None, None, True)


def _name_labels(model: Any, class_names: list[str]) -> None:
    """Give a model with generic LABEL_i names the dataset's class names before it is saved."""
    cfg = model.config
    id2label = {int(k): str(v) for k, v in (cfg.id2label or {}).items()}
    if all(v == f"LABEL_{k}" for k, v in id2label.items()) and len(class_names) == cfg.num_labels:
        cfg.id2label = dict(enumerate(class_names))
        cfg.label2id = {n: i for i, n in enumerate(class_names)}
