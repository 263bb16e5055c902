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

from .cancel import honours_cancel
from .config import TOP_LEVEL, RunConfig, config_keywords
from .data import UnlearnData
from .engine import ProgressFn
from .fields import default_of
from .methods import get_method, run_method
from .metrics.evaluation import Evaluation, evaluate, model_outputs
from .metrics.outputs import EvalOutputs
from .metrics.registry import avg_gap
from .report import UnlearnReport, forget_record
from .seeds import combine_seeds
from .session import IN_MEMORY, Loaded, load


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
    #: each forget row's logit-scaled confidence log p_y − log(1 − p_y) under the unlearned model (an audit's
    #: input; None where the forget logits were too large to keep)
    forget_confidence: np.ndarray | None = None

    def __iter__(self):
        return iter((self.model, self.report))

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        """Push to the Hub in one commit (see :func:`hf_unlearn.push_to_hub`)."""
        from .push import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def save(self, output_dir: str | Path, overwrite: bool = False) -> Path:
        from .output import save_checkpoint

        return save_checkpoint(output_dir, self.model, self.processor, self.report, overwrite=overwrite,
                               mask=self.artifacts.get("mask"), extra_files=self.extra_files())

    def extra_files(self) -> dict[str, str | bytes]:
        """Files that travel with the checkpoint beyond the model and report: the ledger of the requests served
        (local: a push leaves it out unless asked), an audit's evidence, and the membership-inference histograms
        (``mia.png``, while the result still holds its evaluations)."""
        from .ledger import LEDGER_FILE
        from .plots import mia_histogram

        audit, ledger = self.artifacts.get("audit"), self.artifacts.get("ledger")
        mia = mia_histogram(self) if self.evaluations else None
        return {**({LEDGER_FILE: ledger.to_json()} if ledger is not None else {}),
                **(audit.files() if audit is not None else {}), **({"mia.png": mia} if mia else {})}


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
    reference = loaded.reference(seed)  # first: the user sees the long phase start, then the method's
    set_seed(seed)  # the method's draws are the same whether the reference was trained or read just now
    start_model, own_record = loaded.model, None
    if method.name == "retrain":  # Retrain as the method (a reference report's run) starts where references do
        start_model, settings = loaded.retrain_start(settings, seed)
    engine.stage(f"unlearning with {method.name}{loaded.seed_position(seed)}")
    edited = run_method(engine, start_model, data, method, settings, seed)
    if method.name == "retrain":
        own_record = loaded.retrain_record(loaded.start_record(), dataclasses.asdict(settings), False,
                                           edited.seconds)
    engine.stage(f"evaluating{loaded.seed_position(seed)}")
    unlearned = model_outputs(engine, edited.model, data, seed)
    confidence = forget_confidence(unlearned)
    ref_report = config.reference_report
    evaluations = {"original": loaded.original(seed, reference),
                   "unlearned": evaluate(unlearned, reference.outputs if reference else None)}
    newest = newest_request(data, evaluations, reference)
    unlearned.release_logits()  # the metrics are computed: what stays with the result is what the app plots
    if reference is not None:
        evaluations["retrain"] = Evaluation(reference.metrics, reference.outputs)
    metrics: dict[str, Any] = {name: ev.metrics for name, ev in evaluations.items()}
    if ref_report is not None:
        metrics["retrain"] = ref_report.metrics.get("unlearned")
    gaps = {k: avg_gap(metrics[k], metrics["retrain"]) for k in metrics} if metrics.get("retrain") else None

    _name_labels(edited.model, loaded.splits.class_names)
    record = loaded.record(reference) if reference is not None else \
        (ref_report.retrain if ref_report is not None else own_record)
    report = UnlearnReport(
        method=method.name,
        settings=dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else dict(settings or {}),
        forget=forget_record(config.forget, *loaded.own_request(), loaded.splits.class_names),
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
        retrain=record,
    )
    if reference is not None:
        report.settings["retrain_reference"] = reference.recipe
    if config.tuned:
        report.settings["tuned"] = dict(config.tuned)
    ledger = loaded.served(method.name)
    report.lineage, report.newest_request = ledger.lineage(), newest
    edited.artifacts["ledger"] = ledger
    if "mask" in edited.artifacts:
        mask = edited.artifacts["mask"]
        report.settings["mask"] = dict(mask.meta, selected_fraction=mask.fraction())
    return UnlearnResult(edited.model, loaded.processor, report, evaluations, data, original_model=loaded.model,
                         artifacts=edited.artifacts, forget_confidence=confidence)


def newest_request(data: UnlearnData, evaluations: dict[str, Evaluation], reference: Any) -> dict[str, Any] | None:
    """With requests served before (a ledger), the newest request's own metrics: its rows of the forget union."""
    rows = data.request_rows
    if rows is None:
        return None
    ref = reference.outputs.with_forget_rows(rows) if reference is not None else None
    metrics = {name: evaluate(ev.outputs.with_forget_rows(rows), ref).metrics for name, ev in evaluations.items()}
    if ref is not None:
        metrics["retrain"] = evaluate(ref, ref).metrics
    gaps = {k: avg_gap(m, metrics["retrain"]) for k, m in metrics.items()} if ref is not None else None
    return {"n_forget": int(len(rows)), "metrics": metrics, "avg_gap": gaps}


def forget_confidence(outputs: EvalOutputs) -> np.ndarray | None:
    """The forget rows' logit-scaled confidences (the competition's per-example statistic) of one model."""
    from .forgetting_quality import logit_scaled_confidence

    forget = outputs["forget"]
    return None if forget.logits is None else logit_scaled_confidence(forget.logits, forget.labels)


def _name_labels(model: Any, class_names: list[str]) -> None:
    """Give a model with generic LABEL_i names the dataset's class names before it is saved."""
    cfg = model.config
    id2label = {int(k): str(v) for k, v in (cfg.id2label or {}).items()}
    if all(v == f"LABEL_{k}" for k, v in id2label.items()) and len(class_names) == cfg.num_labels:
        cfg.id2label = dict(enumerate(class_names))
        cfg.label2id = {n: i for i, n in enumerate(class_names)}
