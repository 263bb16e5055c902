"""A forgetting-quality audit: the method N times, Retrain N times, and the competition's score between them.

Averages (UA, MIA, Avg.Gap) can match Retrain while single forget examples stay recognisable. The NeurIPS
2023 unlearning competition's score looks at each forget example across many models: its logit-scaled
confidence under N unlearned runs (seeds 0..N−1) and under N retrained references (seeds 0..N−1, ordinary
cached references), how well the best threshold attack tells the two apart (ε), and a score F over the
examples' ε (:mod:`hf_unlearn.forgetting_quality`), adjusted for utility (the final score).

The 2N runs share sources loaded once; under ``accelerate launch`` each process runs whole models of its own
(seed s on process s mod P, no DDP inside a run) and the results are gathered once, so the score is the
one-process score.
"""

from __future__ import annotations

import io
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cancel import honours_cancel
from .config import RunConfig
from .engine import Engine, ProgressFn
from .errors import Cancelled, UnlearnError
from .forgetting_quality import DELTA, bucket_points
from .metrics.forgetting import AuditOutputs
from .metrics.registry import audit_metrics
from .report import UnlearnReport, library_versions
from .report import _clean as clean_json
from .seeds import combine_seeds

if TYPE_CHECKING:
    from .api import UnlearnResult
    from .reference import Reference
    from .session import Loaded

#: the competition ran 512 models of each kind; 32 is where ε up to log(31) ≈ 3.4 becomes measurable
DEFAULT_MODELS = 32
#: fewer models than this measure almost nothing: with 4 a side ε cannot exceed log 3 ≈ 1.1, and the ceiling's
#: halves of 2 models score nothing at all
MIN_MODELS = 8
#: how many of the worst-exposed forget examples the figure shows one by one
WORST_SHOWN = 6


def measurable_epsilon(n_models: int) -> float:
    """The largest ε that N models of each kind can measure, about log(N − 1)."""
    return math.log(n_models - 1)


def score_text(value: Any) -> str:
    """A score at four decimals (the demo's F values are 0.0011 and 0.0118), "–" where it is undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):.4f}"


def explain(record: dict[str, Any]) -> str:
    """What an audit's scores mean, in words a user reads without a glossary (report, card, app, CLI)."""
    m, n = record["metrics"], record["n_models"]
    f, top, final = (score_text(m.get(k)) for k in ("forget_quality", "forget_quality_ceiling", "final_score"))
    return (f"Forgetting quality F = {f}, against a ceiling of {top} at N = {n} (final score, F adjusted "
            f"for retain and test accuracy: {final}). For each forget example an attacker sees its confidence "
            f"under {n} unlearned and {n} retrained models and tries to tell which is which: F = 1 means no attack "
            "tells the unlearned model from retraining on any forget example, F = 0 means every forget example is "
            f"exposed. With {n} models of each kind an attack's strength ε cannot be measured above about "
            f"log(N − 1) = {measurable_epsilon(n):.2f}, so even a perfect unlearner scores below 1: the ceiling is "
            f"what two halves of the retrained models ({n // 2} a side) score against each other.")


@dataclass
class Audit:
    """An audit's result: the scores, each example's ε, both kinds' confidence matrices, and the method's
    report over the N runs (the usual metrics' mean ± std; ``report.audit`` holds the scores)."""

    report: UnlearnReport
    outputs: AuditOutputs
    metrics: dict[str, Any]
    seconds: float
    processes: int = 1
    #: how many of the N Retrain references were read from the cache (the rest were trained now)
    cached_references: int = 0
    #: seed 0's unlearned run (its model is the audited checkpoint a save or push writes), on the main process
    first: UnlearnResult | None = None
    versions: dict[str, str] = field(default_factory=library_versions)

    @property
    def n_models(self) -> int:
        """N: the unlearned runs, and as many retrained references."""
        return self.outputs.n_models

    def record(self) -> dict[str, Any]:
        """The report's and the card's record of the audit (no per-example data)."""
        return {"n_models": self.n_models, "delta": self.outputs.delta, "metrics": dict(self.metrics),
                "measurable_epsilon": measurable_epsilon(self.n_models), "seconds": self.seconds,
                "processes": self.processes, "cached_references": self.cached_references}

    def explain(self) -> str:
        """The scores in words (:func:`explain`)."""
        return explain(self.record())

    def to_dict(self) -> dict[str, Any]:
        """``audit.json``: the scores, ε per forget example by its position in the forget set, N, δ and the
        usual metrics over the N runs; enough to read the result, ``audit_confidences.npz`` to recompute it."""
        rep = self.report
        return {"method": rep.method, "settings": rep.settings, "forget": rep.forget,
                "sources": rep.sources, **self.record(), "meaning": self.explain(),
                "buckets": [{"from": s, "to": s + 0.5, "points": p} for s, p in bucket_points(self.n_models)],
                "epsilon": [float(e) for e in self.outputs.epsilons],
                "usual_metrics": {"mean": rep.metrics, "std": rep.metrics_std, "avg_gap": rep.avg_gap,
                                  "avg_gap_std": rep.avg_gap_std, "rte_s": rep.rte_s, "rte_s_std": rep.rte_s_std},
                "per_model": [{"seed": s, "ra_unlearned": a, "ta_unlearned": b, "ra_retrained": c, "ta_retrained": d}
                              for s, a, b, c, d in zip(rep.seeds or [], self.outputs.ra_unlearned,
                                                       self.outputs.ta_unlearned, self.outputs.ra_retrained,
                                                       self.outputs.ta_retrained, strict=True)],
                "versions": self.versions}

    def markdown(self) -> str:
        """``audit.md``: the scores, what they mean, and the usual metrics over the N runs."""
        rep = self.report
        lines = [f"# Forgetting audit: {rep.method}, forget {rep.forget.get('description')}", "",
                 f"{self.n_models} unlearned runs (seeds 0..{self.n_models - 1}) against {self.n_models} retrained "
                 f"references ({self.cached_references} read from the cache); {self.seconds:.1f} s on "
                 f"{self.processes} process{'es' if self.processes > 1 else ''}.", "", self.explain(), "",
                 "| score | value |", "|---|---|"]
        lines += [f"| {m.label} | {score_text(self.metrics.get(m.key))} |" for m in audit_metrics()]
        lines += ["", f"The usual metrics, mean ± std over the {self.n_models} runs:", "", rep.markdown(), ""]
        return "\n".join(lines)

    def confidences_npz(self) -> bytes:
        """Both kinds' [N models, forget examples] confidence matrices and each model's RA/TA: no image data,
        and all :func:`hf_unlearn.forgetting_quality.forget_score` needs to recompute F."""
        o = self.outputs
        buffer = io.BytesIO()
        np.savez_compressed(buffer, unlearned=o.unlearned, retrained=o.retrained, ra_unlearned=o.ra_unlearned,
                            ra_retrained=o.ra_retrained, ta_unlearned=o.ta_unlearned, ta_retrained=o.ta_retrained,
                            seeds=np.asarray(self.report.seeds or [], np.int64), delta=np.float64(o.delta))
        return buffer.getvalue()

    def plot(self, path: str | Path) -> Path:
        """``epsilon_hist.png``: the examples' ε histogram over the score's buckets, and the confidence
        distributions of the most exposed examples under both kinds of model."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        eps, n = self.outputs.epsilons, self.n_models
        buckets = bucket_points(n)
        top = buckets[-1][0] + 0.5 if buckets else 0.5
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.8), gridspec_kw={"width_ratios": [1.1, 1]})
        shown = np.minimum(eps, top + 0.5)  # ε beyond what N measures (capped at 50) piles up in one last bar
        edges = np.arange(0, top + 1.0 + 1e-9, 0.25)
        ax.hist(shown, bins=edges, color="C0", edgecolor="white")
        for start, points in buckets:
            ax.text(start + 0.25, 0.98, "1" if points == 1 else f"1/{round(1 / points)}",
                    transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=7, color="grey")
            ax.axvline(start, color="grey", lw=0.5, ls=":")
        ax.axvline(top, color="C3", lw=1)
        ax.text(top - 0.04, 0.5, "worth 0 beyond", transform=ax.get_xaxis_transform(), fontsize=8, color="C3",
                rotation=90, ha="right", va="center")
        ax.set_ylim(top=ax.get_ylim()[1] * 1.12)  # room for the bucket points
        f, ceiling = (score_text(self.metrics.get(k)) for k in ("forget_quality", "forget_quality_ceiling"))
        ax.set_title(f"F = {f} (ceiling {ceiling} at N = {n})", fontsize=10)
        ax.set_xlabel("per-example ε (each bucket's points at the top; lower is better)")
        ax.set_ylabel("forget examples")
        worst = np.argsort(-eps, kind="stable")[:WORST_SHOWN]
        for i, row in enumerate(worst):
            for kind, dx, colour in (("unlearned", -0.15, "C1"), ("retrained", 0.15, "C0")):
                values = getattr(self.outputs, kind)[:, row]
                ax2.scatter(np.full(len(values), i + dx), values, s=9, alpha=0.6, color=colour,
                            label=kind if i == 0 else None)
        ax2.set_xticks(range(len(worst)), [f"#{r}\nε={eps[r]:.1f}" for r in worst], fontsize=8)
        ax2.set_ylabel("log p_y − log(1 − p_y)")
        ax2.set_title(f"the {len(worst)} most exposed forget examples, one dot per model", fontsize=10)
        ax2.legend(fontsize=8, loc="best")
        fig.suptitle(f"{self.report.method}, forget {self.report.forget.get('description')}", fontsize=10)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def files(self) -> dict[str, str | bytes]:
        """The audit's own files, by name."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            png = self.plot(Path(tmp) / "epsilon_hist.png").read_bytes()
        return {"audit.json": json.dumps(clean_json(self.to_dict()), indent=2, allow_nan=False),
                "audit.md": self.markdown(), "audit_confidences.npz": self.confidences_npz(),
                "epsilon_hist.png": png}

    def save(self, output_dir: str | Path, overwrite: bool = False) -> Path:
        """The audited checkpoint (seed 0's unlearned model, its report carrying the audit) with the audit's
        files, written whole or not at all; ``hf-unlearn push`` sends it with a card that states the scores."""
        if self.first is None:
            raise UnlearnError("this audit kept no model to save (only the main process keeps seed 0's run)")
        return self.first.save(output_dir, overwrite=overwrite)


@dataclass
class _Run:
    """One seed's share of an audit: both kinds' confidences and accuracies, and the method's report."""

    seed: int
    report: UnlearnReport
    unlearned: np.ndarray
    retrained: np.ndarray
    cached: bool


@honours_cancel
def run_audit(config: RunConfig, n_models: int = DEFAULT_MODELS, *, model: Any = None, processor: Any = None,
              dataset: Any = None, token: str | None = None, progress: ProgressFn | None = None,
              cancel: threading.Event | None = None) -> Audit:
    """Audit ``config.method`` on ``config``'s request with N models of each kind (seeds 0..N−1).

    ``progress`` events carry ``task``/``tasks`` over the 2N runs (Retrain and the method for each seed; a
    reference read from the cache is a task done at once) and ``task_name``.
    """
    from .api import run_seed
    from .session import load

    if not isinstance(n_models, int) or isinstance(n_models, bool) or n_models < MIN_MODELS:
        raise UnlearnError(f"an audit needs at least {MIN_MODELS} models of each kind (n_models), got {n_models}: "
                           f"the competition used 512, {DEFAULT_MODELS} is the default")
    if config.method == "retrain":
        raise UnlearnError("auditing Retrain against itself measures nothing: choose an unlearning method")
    if config.retrain_settings is None or config.reference != "retrain":
        config = replace(config, reference="retrain")
    config = replace(config, options=replace(config.options, seeds=None))
    t0 = time.perf_counter()
    loaded = load(config, model=model, processor=processor, dataset=dataset, token=token, progress=progress,
                  independent=True)
    engine = loaded.engine
    _check_logits_kept(loaded)
    group = _gather_group(engine)  # made while every process is still in step
    mine = [s for s in range(n_models) if s % engine.workers == engine.worker]
    runs: list[_Run] = []
    first = None
    failure: str | None = None
    try:
        for i, seed in enumerate(mine):
            done = _track(loaded, progress, 2 * i, 2 * len(mine), f"retrain, seed {seed}")
            reference = loaded.reference(seed)
            done()  # a reference read from the cache emits no training event of its own
            _track(loaded, progress, 2 * i + 1, 2 * len(mine), f"{config.method}, seed {seed}")
            result = run_seed(loaded, config.method, config.settings, seed)
            runs.append(_Run(seed, result.report, result.forget_confidence, _forget_confidence(reference),
                             bool(reference.cached)))
            if seed == 0:
                first = result
            del result
            loaded.references.pop(seed, None)  # N references' outputs (and, uncached, models) would pile up
            loaded.originals.pop(seed, None)
    except Exception as exc:  # noqa: BLE001 - under several processes every failure must reach the gather
        if engine.workers == 1 or isinstance(exc, Cancelled):
            raise
        # told to the other processes at the gather, so that none waits for this one
        failure = str(exc) if isinstance(exc, UnlearnError) else f"{type(exc).__name__}: {str(exc)[:200]}"
    runs = _gathered(engine, group, runs, failure)
    return _score(runs, time.perf_counter() - t0, engine.workers, first)


def _track(loaded: Loaded, progress: ProgressFn | None, task: int, tasks: int, name: str) -> Callable[[], None]:
    """Tag the engine's progress events with the audit task they belong to; returns "this task is done"."""
    def tagged(event: dict[str, Any]) -> None:
        if progress is not None:
            progress({**event, "task": task, "tasks": tasks, "task_name": name})

    loaded.engine.progress = tagged if progress is not None else None
    return lambda: tagged({"phase": "reference ready", "epoch": 1, "epochs": 1, "step": 1, "steps": 1})


TOO_LARGE = ("the forget set is too large for an audit: its logits ({mb:.0f} MB) are over the {limit:.0f} MB a "
             "split keeps (LOGITS_BUDGET); audit a smaller forget set")


def _check_logits_kept(loaded: Loaded) -> None:
    """Refuse, before any run, a forget set whose logits no evaluation keeps (its confidences need them)."""
    from .metrics.outputs import LOGITS_BUDGET

    size = len(loaded.data.forget) * loaded.data.num_classes * 4
    if size > LOGITS_BUDGET:
        raise UnlearnError(TOO_LARGE.format(mb=size / 2**20, limit=LOGITS_BUDGET / 2**20))


def _forget_confidence(reference: Reference) -> np.ndarray:
    from .api import forget_confidence

    confidence = forget_confidence(reference.outputs)
    if confidence is None:  # ruled out by _check_logits_kept; a reference stored by another version could lack them
        raise UnlearnError("the cached Retrain reference kept no forget-set logits: clear the reference cache "
                           "(HF_UNLEARN_CACHE/references) and audit again")
    return confidence


def _gather_group(engine: Engine) -> Any:
    """A gloo group with a timeout of days for the audit's one gather: each process trains its share of the
    2N runs alone, and one that finishes early would otherwise be aborted by NCCL's ten-minute watchdog."""
    if engine.workers == 1:
        return None
    from datetime import timedelta

    import torch.distributed as dist

    return dist.new_group(backend="gloo", timeout=timedelta(days=7))


def _gathered(engine: Engine, group: Any, runs: list[_Run], failure: str | None) -> list[_Run]:
    """Every process's runs, in seed order, on every process (the one gather of an audit); a process's failure
    is raised on all of them."""
    if engine.workers > 1:
        import torch.distributed as dist

        parts: list[Any] = [None] * engine.workers
        dist.all_gather_object(parts, (failure, runs), group=group)
        failed = next((why for why, _ in parts if why), None)
        if failed:
            raise UnlearnError(failed)
        runs = [run for _, part in parts for run in part]
    return sorted(runs, key=lambda r: r.seed)


def _score(runs: list[_Run], seconds: float, processes: int, first: UnlearnResult | None) -> Audit:
    """The audit metrics (the registry's audit scope) over the gathered runs, and the combined report."""
    reports = [r.report for r in runs]

    def accuracy(kind: str, key: str) -> np.ndarray:
        return np.array([float(rep.metrics[kind][key]) for rep in reports])

    outputs = AuditOutputs(np.stack([r.unlearned for r in runs]), np.stack([r.retrained for r in runs]),
                           accuracy("unlearned", "ra"), accuracy("retrain", "ra"), accuracy("unlearned", "ta"),
                           accuracy("retrain", "ta"), DELTA)
    metrics = {m.key: m.value(outputs) for m in audit_metrics()}
    report = combine_seeds(reports)
    audit = Audit(report, outputs, metrics, seconds, processes, sum(r.cached for r in runs), first)
    report.audit = audit.record()
    if first is not None:  # the audited checkpoint: saved and pushed with the audit's files beside it
        first.report = report
        first.artifacts["audit"] = replace(audit, first=None)  # the files' source, not a second copy of the run
    return audit


def audit(model: str, dataset: str, forget: Any, method: str = "ft", *, n_models: int = DEFAULT_MODELS,
          output_dir: str | Path | None = None, token: str | None = None, progress: ProgressFn | None = None,
          cancel: threading.Event | None = None, **keywords: Any) -> Audit:
    """Audit ``method`` on one request: ``hf-unlearn audit`` from Python.

    Runs the method N times (seeds 0..N−1) and gets N Retrain references from the cache, training any that are
    missing; ``keywords`` are ``unlearn(...)``'s (``retrain_settings``, ``mixed_precision``, …) and the
    method's settings. With ``output_dir`` the audited checkpoint and the audit's files are written there.
    """
    if "seeds" in keywords or "seed" in keywords:
        raise UnlearnError("an audit's seeds are 0..n_models−1: drop seed/seeds and set n_models")
    config = RunConfig.from_keywords(model=model, dataset=dataset, forget=forget, method=method,
                                     reference="retrain", **keywords)
    result = run_audit(config, n_models, token=token, progress=progress, cancel=cancel)
    if output_dir is not None and result.first is not None:  # under accelerate launch: the main process writes
        result.save(output_dir)
    return result
