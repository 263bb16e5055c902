"""``unlearn()``: sources → splits → method → metrics → report, in that order only."""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .cancel import honours_cancel, raise_if_cancelled
from .config import DataSource, ForgetSpec, ModelSource, RunOptions
from .data import UnlearnData, build_data, check_model_labels, class_names_and_labels, detect_columns, forget_ids_digest
from .engine import Engine, ProgressFn
from .errors import UnlearnError
from .hub import Resolved, default_cache_dir, load_dataset_dict, load_model
from .methods import MethodContext, get_method
from .metrics.core import avg_gap
from .metrics.evaluation import Evaluation, evaluate_model
from .report import UnlearnReport


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


def as_forget_spec(forget: Any) -> ForgetSpec:
    """Accept a ForgetSpec, a class name/id, a list of them, or a dict of ForgetSpec fields."""
    if isinstance(forget, ForgetSpec):
        return forget
    if isinstance(forget, dict):
        try:
            return ForgetSpec(**forget)
        except TypeError as exc:
            raise UnlearnError(f"bad forget specification: {exc}") from None
    if isinstance(forget, (str, int)):
        return ForgetSpec(classes=(forget,))
    if isinstance(forget, (list, tuple)) and forget:
        return ForgetSpec(classes=tuple(forget))
    raise UnlearnError("forget must be a class name or id, a list of classes, a dict or a ForgetSpec")


def _label_map(class_names: list[str]) -> dict[int, str]:
    return dict(enumerate(class_names))


@honours_cancel
def unlearn(model: Any, dataset: Any, forget: Any, method: str = "ft", *,
            processor: Any = None, revision: str | None = None,
            dataset_config: str | None = None, dataset_revision: str | None = None,
            train_split: str = "train", test_split: str | None = None,
            image_column: str | None = None, label_column: str | None = None,
            streaming: bool = False, reference: Any = None, retrain_settings: dict[str, Any] | None = None,
            seed: int = 0, mixed_precision: str = "no", cpu: bool = False, eval_batch_size: int = 256,
            cache_dir: str | Path | None = None, reinit_head: bool = False, token: str | None = None,
            progress: ProgressFn | None = None, cancel: threading.Event | None = None,
            **settings: Any) -> UnlearnResult:
    """Make ``model`` forget part of ``dataset`` with ``method`` and measure the result.

    ``model``: a local directory, a Hub repo id or a loaded transformers model
    (then pass ``processor``). ``dataset``: a local folder, parquet file, Hub id
    or a ``DatasetDict``. ``forget``: a :class:`ForgetSpec` or a class.
    ``reference``: ``"retrain"`` to also retrain from scratch on D_r (the gold
    standard, for Avg.Gap and RTE), or a report / report path of an earlier
    Retrain. ``streaming``: read a folder or Hub dataset as streams, written
    once to an on-disk table (for datasets larger than memory). Remaining keyword arguments are the method's settings
    (``hf_unlearn.get_method(name).describe_settings()`` lists them).
    """
    spec = as_forget_spec(forget)
    the_method = get_method(method)
    method_settings = the_method.settings(settings)
    retrain_method = get_method("retrain")
    rt_settings = retrain_method.settings(retrain_settings) if reference == "retrain" else None
    ref_report = _load_reference(reference)
    options = RunOptions(seed=seed, mixed_precision=mixed_precision, cpu=cpu, eval_batch_size=eval_batch_size,
                         cache_dir=str(cache_dir) if cache_dir else None, reinit_head=reinit_head)
    cache = Path(options.cache_dir) if options.cache_dir else default_cache_dir() / "tensors"

    # sources
    dsrc = DataSource(id=dataset if isinstance(dataset, str) else "<in-memory>", config=dataset_config,
                      revision=dataset_revision, train_split=train_split, test_split=test_split,
                      image_column=image_column, label_column=label_column, streaming=streaming)
    if isinstance(dataset, str):
        dsd, data_res = load_dataset_dict(dsrc, token=token)
    else:
        dsd, data_res = dataset, Resolved(dsrc.id, None, None, True)
        import datasets

        if isinstance(dsd, (datasets.IterableDataset, datasets.IterableDatasetDict)):  # streamed by the caller
            from .hub import materialise_streams

            dsd = materialise_streams(dsd if isinstance(dsd, datasets.IterableDatasetDict) else {train_split: dsd})
    if dsrc.train_split not in dsd:
        raise UnlearnError(f"the dataset has no '{train_split}' split (it has: {', '.join(dsd.keys())}): "
                           "pass --train-split")
    raise_if_cancelled()
    _, lbl_col = detect_columns(dsd[train_split], image_column, label_column)
    class_names, _ = class_names_and_labels(dsd[train_split], lbl_col)
    if isinstance(model, str):
        msrc = ModelSource(model, revision)
        net, proc, model_res = load_model(msrc, token=token)
        if reinit_head:
            net, proc, model_res = load_model(msrc, token=token, num_labels=len(class_names),
                                              id2label=_label_map(class_names))
    else:
        if processor is None:
            raise UnlearnError("pass the model's image processor with processor=... when giving a loaded model")
        net, proc = model, processor
        model_res = Resolved(getattr(getattr(model, "config", None), "name_or_path", "") or "<in-memory>",
                             None, None, True)
    raise_if_cancelled()
    check_model_labels(net.config, class_names)
    num_channels = int(getattr(net.config, "num_channels", 3) or 3)
    data, data_info = build_data(dsd, dsrc, spec, proc, num_channels, cache_dir=cache)

    engine = Engine(options.mixed_precision, options.cpu, options.eval_batch_size, progress, cancel)
    data_info["processes"] = engine.world
    from accelerate.utils import set_seed

    set_seed(seed)
    data = data.to(engine.device)
    net = engine.place(net)
    evaluations = {"original": evaluate_model(engine, net, data, seed)}

    # method
    edited = copy.deepcopy(net)
    ctx = MethodContext(engine=engine, model=edited, data=data, seed=seed)
    set_seed(seed)
    t0 = time.perf_counter()
    edited = the_method.run(ctx, method_settings)
    rte = time.perf_counter() - t0
    evaluations["unlearned"] = evaluate_model(engine, edited, data, seed)

    # reference
    retrain_s = None
    metrics: dict[str, Any] = {k: v.metrics.to_dict() for k, v in evaluations.items()}
    if rt_settings is not None:
        rctx = MethodContext(engine=engine, model=copy.deepcopy(net), data=data, seed=seed)
        t1 = time.perf_counter()
        retrained = retrain_method.run(rctx, rt_settings)
        retrain_s = time.perf_counter() - t1
        evaluations["retrain"] = evaluate_model(engine, retrained, data, seed)
        metrics["retrain"] = evaluations["retrain"].metrics.to_dict()
        del retrained
    elif ref_report is not None:
        metrics["retrain"] = ref_report.metrics.get("unlearned")
        retrain_s = ref_report.rte_s
    gaps = None
    if metrics.get("retrain"):
        gaps = {k: avg_gap(metrics[k], metrics["retrain"]) for k in metrics}

    _name_labels(edited, class_names)
    forget_info = spec.to_dict()
    forget_info.update(description=spec.describe(), n_forget=int(len(data.forget_rows)),
                       forget_ids_sha256=forget_ids_digest(data.forget_rows),
                       class_ids=data.forget_class_ids,
                       class_names=[class_names[i] for i in data.forget_class_ids])
    report = UnlearnReport(
        method=the_method.name,
        settings=asdict(method_settings),
        forget=forget_info,
        sources={"model": model_res.to_dict(), "dataset": {**data_res.to_dict(), "config": dataset_config}},
        data=data_info,
        class_names=class_names,
        seed=seed,
        metrics=metrics,
        avg_gap=gaps,
        rte_s=rte,
        retrain_s=retrain_s,
        reference=("retrain" if rt_settings is not None else (str(reference) if ref_report else None)),
    )
    if rt_settings is not None:
        report.settings["retrain_reference"] = asdict(rt_settings)
    if "mask" in ctx.artifacts:
        report.settings["mask"] = dict(ctx.artifacts["mask"].meta, selected_fraction=ctx.artifacts["mask"].fraction())
    return UnlearnResult(edited, proc, report, evaluations, data, original_model=net, artifacts=ctx.artifacts)


def _load_reference(reference: Any) -> UnlearnReport | None:
    if reference is None or reference == "retrain":
        return None
    if isinstance(reference, UnlearnReport):
        return reference
    if isinstance(reference, (str, Path)):
        rep = UnlearnReport.load(reference)
        if rep.method != "retrain":
            raise UnlearnError(f"reference report '{reference}' is from method '{rep.method}', not a retrain")
        return rep
    raise UnlearnError("reference must be 'retrain', a report.json path or an UnlearnReport")


def _name_labels(model: Any, class_names: list[str]) -> None:
    """Give a model with generic LABEL_i names the dataset's class names before it is saved."""
    cfg = model.config
    id2label = {int(k): str(v) for k, v in (cfg.id2label or {}).items()}
    if all(v == f"LABEL_{k}" for k, v in id2label.items()) and len(class_names) == cfg.num_labels:
        cfg.id2label = _label_map(class_names)
        cfg.label2id = {n: i for i, n in enumerate(class_names)}
