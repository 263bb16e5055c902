"""``unlearn()`` and ``run()``: sources → splits → method → metrics → report, in that order only.

:func:`run` executes a :class:`~hf_unlearn.config.RunConfig`; the CLI and
the app build one and call it. :func:`unlearn` is the keyword API over it:
its keywords are the configuration's fields (its signature is generated from
them), anything else is a setting of the method.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .cancel import honours_cancel, raise_if_cancelled
from .config import DataSource, RunConfig, config_keywords
from .data import UnlearnData, check_model_labels, labelled_splits
from .engine import Engine, ProgressFn
from .fields import default_of
from .hub import Resolved, default_cache_dir, load_dataset_dict, load_model, materialise_streams
from .methods import get_method, run_method
from .metrics.evaluation import Evaluation, evaluate, model_outputs
from .metrics.registry import avg_gap
from .report import UnlearnReport, forget_record


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
    extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None)
             for n in ("reference", "retrain_settings")]
    return inspect.Signature([*fixed, *generated, *extra, own["keywords"]])


unlearn.__signature__ = _signature()  # type: ignore[attr-defined]


@honours_cancel
def run(config: RunConfig, *, model: Any = None, processor: Any = None, dataset: Any = None,
        token: str | None = None, progress: ProgressFn | None = None,
        cancel: threading.Event | None = None) -> UnlearnResult:
    """Execute ``config``. ``model`` / ``dataset``: already loaded objects to use instead of the sources' ids."""
    options, method = config.options, get_method(config.method)
    cache = Path(options.cache_dir) if options.cache_dir else default_cache_dir() / "tensors"

    # sources
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
    from accelerate.utils import set_seed

    set_seed(options.seed)
    data = data.to(engine.device)
    net = engine.place(net)
    outputs = {"original": model_outputs(engine, net, data, options.seed)}

    # method
    edited = run_method(engine, net, data, method, config.settings, options.seed)
    outputs["unlearned"] = model_outputs(engine, edited.model, data, options.seed)

    # reference
    retrain_s, ref_report = None, config.reference_report
    if config.retrain_settings is not None:
        retrained = run_method(engine, net, data, "retrain", config.retrain_settings, options.seed)
        retrain_s = retrained.seconds
        outputs["retrain"] = model_outputs(engine, retrained.model, data, options.seed)
        del retrained
    elif ref_report is not None:
        retrain_s = ref_report.rte_s

    # metrics
    reference = outputs.get("retrain")
    evaluations = {name: evaluate(out, reference) for name, out in outputs.items()}
    for out in outputs.values():  # the metrics are computed: what stays with the result is what the app plots
        out.release_logits()
    metrics: dict[str, Any] = {name: ev.metrics for name, ev in evaluations.items()}
    if ref_report is not None:
        metrics["retrain"] = ref_report.metrics.get("unlearned")
    gaps = {k: avg_gap(metrics[k], metrics["retrain"]) for k in metrics} if metrics.get("retrain") else None

    _name_labels(edited.model, splits.class_names)
    report = UnlearnReport(
        method=method.name,
        settings=asdict(config.settings),
        forget=forget_record(config.forget, data.forget_rows, data.forget_class_ids, splits.class_names),
        sources={"model": model_res.to_dict(), "dataset": {**data_res.to_dict(), "config": config.data.config}},
        data=data_info,
        class_names=splits.class_names,
        seed=options.seed,
        metrics=metrics,
        avg_gap=gaps,
        rte_s=edited.seconds,
        retrain_s=retrain_s,
        reference=("retrain" if config.retrain_settings is not None
                   else (str(config.reference) if ref_report else None)),
    )
    if config.retrain_settings is not None:
        report.settings["retrain_reference"] = asdict(config.retrain_settings)
    if "mask" in edited.artifacts:
        mask = edited.artifacts["mask"]
        report.settings["mask"] = dict(mask.meta, selected_fraction=mask.fraction())
    return UnlearnResult(edited.model, proc, report, evaluations, data, original_model=net,
                         artifacts=edited.artifacts)


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
