"""``tune()``: settings that fit the user's model, chosen on proxy requests, never worse than doing nothing.

Every method's defaults come from one benchmark and do not transfer: on another
model they can leave it further from Retrain than no edit at all. Tuning on the
real request would need its Retrain (the cost unlearning avoids) and would
overfit it, so the tuner works on K proxy requests of the same kind and size,
disjoint from the real one (:mod:`hf_unlearn.proxies`), each with its own Retrain
reference (ordinary cached references, shared by later requests).

Per method, Optuna's TPE sampler searches the ranges declared beside the
method's settings (:mod:`hf_unlearn.search`), within a budget of trials and
seconds. Every trial runs on each proxy with each search seed (two by default);
the objective is the mean Avg.Gap over those pairs. The first trial is the
defaults, so the result is never worse on the proxies than they are. A trial
reports its running mean after each pair and is pruned when it is clearly
lost: worse than the median of earlier trials at that point, or more than twice
as far from Retrain as the untouched model.

The best of many trials flatters itself on the pairs it was chosen on, so it
is run once more on the proxies with fresh seeds and judged there against
``none``, pair by pair (:attr:`MethodTuning.beats_none`). When it does not win
by more than the noise and one forget example's worth of Avg.Gap, the tuned
choice *is* ``none``, and a run with the settings file returns the untouched
model.

The result is a settings file (:meth:`Tuning.save`) that ``hf-unlearn run
--settings FILE``, ``compare --settings FILE`` and the app read, and an entry
per method in the tuned-settings store, which the app offers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .cancel import honours_cancel, raise_if_cancelled
from .compare import DEFAULT_METHODS
from .config import RunConfig
from .engine import ProgressFn
from .errors import Cancelled, UnlearnError
from .methods import NONE
from .proxies import DEFAULT_PROXIES, POOL_SEED, proxy_requests
from .search import search_space
from .seeds import mean_std

logger = logging.getLogger(__name__)

#: what a settings file says it is (a file of anything else is refused with that in the message)
FORMAT = "hf-unlearn tuned settings"
VERSION = 1
DEFAULT_TRIALS = 30
#: a trial whose running Avg.Gap exceeds this many times the untouched model's (plus a point) is clearly lost
LOST_FACTOR = 2.0
#: settings files are small; anything larger is not one (the app reads uploads)
MAX_FILE_BYTES = 1 << 20


@dataclass
class MethodTuning:
    """One method's tuning: the best settings found and how they did on the proxies against the defaults and
    the untouched model."""

    method: str
    #: the best trial's values of the searched settings (with the fixed overrides the tuning was given)
    settings: dict[str, Any]
    proxy_avg_gap: float
    #: the best trial's Avg.Gap on each (proxy, seed) pair, in the order of ``none_proxy_avg_gaps``
    proxy_avg_gaps: list[float]
    defaults_proxy_avg_gap: float | None
    none_proxy_avg_gap: float
    trials: int
    pruned: int = 0
    failed: int = 0
    seconds: float = 0.0
    budget: dict[str, Any] = field(default_factory=dict)
    #: the untouched model's Avg.Gap on each (proxy, seed) pair
    none_proxy_avg_gaps: list[float] = field(default_factory=list)
    #: the best trial again on the proxies with fresh seeds, and the untouched model there (pair by pair)
    validation_avg_gaps: list[float] = field(default_factory=list)
    none_validation_avg_gaps: list[float] = field(default_factory=list)
    #: how much closer than ``none`` an edit must come (beyond the noise) to ship: one forget example's worth
    margin: float = 0.0

    @property
    def validation_avg_gap(self) -> float | None:
        return _mean(self.validation_avg_gaps) if self.validation_avg_gaps else None

    @property
    def beats_none(self) -> bool:
        """Whether the best trial comes closer to Retrain than leaving the model alone, by more than the noise.

        The best of many trials looks better on the pairs it was chosen on than it is (the winner's curse), and
        on a model already close to Retrain every edit is noise around the untouched model. So the decision is
        made on fresh seeds (the validation pairs: the same proxies, seeds no trial saw), pair by pair: the mean
        of (method − none) plus one standard error of that mean must be below −``margin``, the Avg.Gap one
        forget example moves (a smaller gain is below what the metrics can resolve); and the best trial's own
        proxy Avg.Gap must be below ``none``'s. Without validation pairs the search pairs are used.
        """
        if not self.proxy_avg_gap < self.none_proxy_avg_gap:  # never ship what the search itself found worse
            return False
        ours, theirs = (self.validation_avg_gaps, self.none_validation_avg_gaps) if self.validation_avg_gaps \
            else (self.proxy_avg_gaps, self.none_proxy_avg_gaps)
        if len(ours) != len(theirs) or len(ours) < 2:
            return self.proxy_avg_gap < self.none_proxy_avg_gap - self.margin
        mean, std = mean_std([a - b for a, b in zip(ours, theirs, strict=True)])
        return mean + std / math.sqrt(len(ours)) < -self.margin

    def choice(self) -> tuple[str, dict[str, Any]]:
        """(method, settings) a tuned run uses: the best trial's, or ``none`` when that did not beat it."""
        return (self.method, dict(self.settings)) if self.beats_none else (NONE, {})

    def summary(self, proxies: int) -> str:
        """ "tuned on 2 proxy requests, 30 trials: proxy Avg.Gap 1.20 (defaults 15.81; untouched 1.98)"."""
        defaults = f"defaults {self.defaults_proxy_avg_gap:.2f}; " if self.defaults_proxy_avg_gap is not None else ""
        text = (f"tuned on {proxies} proxy request{'s' if proxies != 1 else ''}, {self.trials} trials: proxy "
                f"Avg.Gap {self.proxy_avg_gap:.2f} ({defaults}untouched {self.none_proxy_avg_gap:.2f})")
        if self.validation_avg_gaps:
            text += (f"; on fresh seeds {self.validation_avg_gap:.2f} against "
                     f"{_mean(self.none_validation_avg_gaps):.2f} untouched")
        if not self.beats_none:
            text += ("; it did not beat leaving the model alone by more than the noise and one forget example, so "
                     "the tuned choice is 'none'")
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "beats_none": self.beats_none,
                "validation_avg_gap": self.validation_avg_gap}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MethodTuning:
        """From a file: every number a float, every list of numbers a list of floats (a ``null`` is infinity:
        how a file stores a run that had no Avg.Gap), the settings a plain mapping."""
        def number(v: Any) -> float:
            return math.inf if v is None else float(v)

        def numbers(v: Any) -> list[float]:
            return [number(x) for x in list(v or [])]

        return cls(method=str(d["method"]), settings=dict(d["settings"]), proxy_avg_gap=number(d["proxy_avg_gap"]),
                   proxy_avg_gaps=numbers(d["proxy_avg_gaps"]),
                   defaults_proxy_avg_gap=None if d.get("defaults_proxy_avg_gap") is None
                   else float(d["defaults_proxy_avg_gap"]),
                   none_proxy_avg_gap=float(d["none_proxy_avg_gap"]), trials=int(d["trials"]),
                   pruned=int(d.get("pruned", 0)), failed=int(d.get("failed", 0)), seconds=float(d.get("seconds", 0)),
                   budget=dict(d.get("budget") or {}), none_proxy_avg_gaps=numbers(d.get("none_proxy_avg_gaps")),
                   validation_avg_gaps=numbers(d.get("validation_avg_gaps")),
                   none_validation_avg_gaps=numbers(d.get("none_validation_avg_gaps")),
                   margin=float(d.get("margin", 0.0)))

    def check(self, name: str, where: str) -> None:
        """A file's entry must be a registered method's, under its own name, with only its settings, valid: a
        settings file is input (an upload to a public app), and its values become a run's."""
        from .methods import get_method

        method = get_method(name)
        if method.name != name or self.method != name:
            raise UnlearnError(f"{where}: the entry '{name}' is not a method's registered name ({method.name})")
        own = {f["name"] for f in method.describe_settings()}
        stray = sorted(set(self.settings) - own)
        if stray:
            raise UnlearnError(f"{where}: '{stray[0]}' is not a setting of method '{name}': tune again")
        method.settings(self.settings)  # values of the right types and in range, or one line


@dataclass
class Tuning:
    """A tuning's result: the request it was for, its proxies, and each method's :class:`MethodTuning`."""

    request: dict[str, Any]
    proxies: list[dict[str, Any]]
    sources: dict[str, Any]
    #: the seeds each proxy ran with (every trial runs on every proxy × seed)
    seeds: list[int]
    methods: dict[str, MethodTuning]
    seconds: float = 0.0
    #: time spent on the proxies' Retrain references (trained, or read from the cache) and how many were cached
    reference_seconds: float = 0.0
    references_cached: int = 0
    objective: str = "mean Avg.Gap over the proxy requests × seeds"
    #: the fresh seeds the best trial is checked on against ``none`` (:attr:`MethodTuning.beats_none`)
    validation_seeds: list[int] = field(default_factory=list)
    #: methods that could not be tuned, with the one-line reason (a run with them uses their defaults)
    failed: dict[str, str] = field(default_factory=dict)

    def choice(self, method: str) -> tuple[str, dict[str, Any], MethodTuning]:
        """(method to run, its settings, the tuning record) for ``method``; a one-line error if it was not tuned."""
        from .methods import get_method

        name = get_method(method).name
        if name not in self.methods:
            raise UnlearnError(f"the settings file has tuned settings for {', '.join(self.methods)}, not for "
                               f"'{name}': tune it (hf-unlearn tune --methods {name}) or choose one of those")
        tuned = self.methods[name]
        return (*tuned.choice(), tuned)

    def apply(self, method: str, own: Mapping[str, Any], source: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """A run of ``method`` with these settings: (the method to run, its settings, the record the report keeps).
        The settings are the tuned ones under ``own`` (the user's edits win); ``none`` has none."""
        name, tuned, record = self.choice(method)
        return name, ({**tuned, **own} if name != NONE else {}), self.record(record.method, source)

    def record(self, method: str, source: str) -> dict[str, Any]:
        """What a run with these settings records of them (the report's ``settings["tuned"]``, the card)."""
        tuned = self.choice(method)[2]
        return {"source": source, "for": tuned.method, "request": self.request.get("description"),
                "proxies": [p["description"] for p in self.proxies], "summary": tuned.summary(len(self.proxies)),
                "settings": dict(tuned.settings), "beats_none": tuned.beats_none}

    def markdown(self) -> str:
        lines = [f"Tuned for {self.request.get('description')} on {len(self.proxies)} proxy requests "
                 f"({'; '.join(p['description'] for p in self.proxies)}), seeds {', '.join(map(str, self.seeds))}"
                 + (f" (the best trial checked against none on seeds {', '.join(map(str, self.validation_seeds))})"
                    if self.validation_seeds else "") + "; objective: "
                 f"{self.objective}.", "",
                 "| method | trials (pruned, failed) | proxy Avg.Gap, defaults | proxy Avg.Gap, tuned | untouched | "
                 "fresh seeds: tuned / untouched | tuned settings |", "|---|---|---|---|---|---|---|"]
        for name, t in self.methods.items():
            default = "—" if t.defaults_proxy_avg_gap is None else f"{t.defaults_proxy_avg_gap:.2f}"
            shown = ", ".join(f"{k}={fmt_value(v)}" for k, v in t.settings.items()) if t.beats_none else \
                "none (nothing beat the untouched model)"
            fresh = f"{t.validation_avg_gap:.2f} / {_mean(t.none_validation_avg_gaps):.2f}" \
                if t.validation_avg_gaps else "—"
            lines.append(f"| {name} | {t.trials} ({t.pruned}, {t.failed}) | {default} | {t.proxy_avg_gap:.2f} | "
                         f"{t.none_proxy_avg_gap:.2f} | {fresh} | {shown} |")
        refs = len(self.proxies) * (len(self.seeds) + len(self.validation_seeds))
        lines += [f"| {name} | failed: {why} | | | | | |" for name, why in self.failed.items()]
        lines += ["", f"Tuning took {self.seconds:.1f} s, of which {self.reference_seconds:.1f} s for the proxies' "
                  f"Retrain references ({self.references_cached} of {refs} read from the cache)."]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        from .report import library_versions

        return {"format": FORMAT, "version": VERSION, "request": self.request, "proxies": self.proxies,
                "sources": self.sources, "seeds": self.seeds, "validation_seeds": self.validation_seeds,
                "objective": self.objective,
                "seconds": self.seconds, "reference_seconds": self.reference_seconds,
                "references_cached": self.references_cached, "versions": library_versions(),
                "methods": {name: t.to_dict() for name, t in self.methods.items()}, "failed": self.failed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "the settings") -> Tuning:
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise UnlearnError(f"{where} is not an hf-unlearn tuned-settings file (write one with hf-unlearn tune)")
        if d.get("version") != VERSION:
            raise UnlearnError(f"{where} is a tuned-settings file of version {d.get('version')}; this hf-unlearn "
                               f"reads version {VERSION}: tune again")
        try:
            methods = {str(k): MethodTuning.from_dict(v) for k, v in dict(d["methods"]).items()}
            tuning = cls(request=dict(d["request"]), proxies=[dict(p) for p in d["proxies"]],
                         sources=dict(d.get("sources") or {}), seeds=[int(x) for x in d["seeds"]], methods=methods,
                         seconds=float(d.get("seconds", 0.0)), reference_seconds=float(d.get("reference_seconds", 0.0)),
                         validation_seeds=[int(x) for x in d.get("validation_seeds") or []],
                         references_cached=int(d.get("references_cached", 0)),
                         failed={str(k): str(v) for k, v in dict(d.get("failed") or {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise UnlearnError(f"{where} is a damaged tuned-settings file ({type(exc).__name__}): tune again") from None
        for name, tuned in tuning.methods.items():
            tuned.check(name, where)
        return tuning

    def save(self, path: str | Path) -> Path:
        """Write the settings file (atomically: a failed write leaves no half file)."""
        from .output import write_text_atomically
        from .report import _clean

        return write_text_atomically(path, json.dumps(_clean(self.to_dict()), indent=2, allow_nan=False))

    @classmethod
    def load(cls, path: str | Path) -> Tuning:
        from .output import read_json_file

        data = read_json_file(path, MAX_FILE_BYTES, "settings file", "hf-unlearn tune")
        return cls.from_dict(data, f"'{Path(path).name}'")


def fmt_value(value: Any) -> str:
    """A setting's value for a table: floats to four significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def load_tuning(path: str | Path, kind: str, warn: Any) -> Tuning:
    """A settings file for a run of ``kind``; ``warn(text)`` hears when it was tuned for another kind of request
    (its settings then fit the request less well; they are still what the user asked for)."""
    tuning = Tuning.load(path)
    tuned_for = tuning.request.get("kind")
    if tuned_for and tuned_for != kind:
        warn(f"'{Path(path).name}' was tuned for {tuned_for} requests ({tuning.request.get('description')}); this "
             f"one is a {kind} request: tune for it to get settings that fit")
    return tuning


# ------------------------------------------------------------------ the tuned-settings store


def store_key(config: RunConfig, method: str) -> dict[str, Any]:
    """What tuned settings are kept per: the model, the dataset (as named), the request's kind and the method."""
    return source_key(config.model.id, config.model.revision, config.data.id, config.data.config, config.forget.kind,
                      method)


def source_key(model: str, revision: str | None, dataset: str, dataset_config: str | None, kind: str,
               method: str) -> dict[str, Any]:
    """:func:`store_key` from plain names (the app looks tuned settings up before it builds a configuration)."""
    from .methods import get_method

    return {"model": model, "revision": revision or None, "dataset": dataset, "config": dataset_config or None,
            "kind": kind, "method": get_method(method).name}


def _store_path(key: Mapping[str, Any]) -> Path:
    from .cache import digest
    from .hub import default_cache_dir

    return default_cache_dir() / "tuned" / f"{digest(dict(key))}.json"


def remember(config: RunConfig, tuning: Tuning) -> list[Path]:
    """Keep each method's tuning in the store (one file per model, dataset, kind and method; newest wins)."""
    out = []
    for name, tuned in tuning.methods.items():
        one = replace(tuning, methods={name: tuned})
        path = _store_path(store_key(config, name))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out.append(one.save(path))
        except OSError as exc:  # the store is a convenience: the settings file is the result
            logger.warning("tuned settings could not be kept in the cache (%s)", exc)
    return out


def recall(key: Mapping[str, Any]) -> Tuning | None:
    """The stored tuning for a :func:`store_key`, or None (none kept, or unreadable)."""
    path = _store_path(key)
    if not path.exists():
        return None
    try:
        return Tuning.load(path)
    except UnlearnError as exc:
        logger.warning("ignoring the stored tuned settings %s: %s", path, exc)
        return None


# ------------------------------------------------------------------ tuning


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values))


def one_example(n_forget: int) -> float:
    """The Avg.Gap one forget example moves through UA alone: 100 / n_forget points, over the gap's metrics."""
    from .metrics.registry import gap_metrics

    return 100.0 / (max(len(gap_metrics()), 1) * max(n_forget, 1))


def _gap(loaded: Any, method: str, settings: Any, seed: int) -> float:
    """The method's Avg.Gap on one loaded request (infinity when it has none)."""
    from .api import run_seed

    ours = (run_seed(loaded, method, settings, seed).report.avg_gap or {}).get("unlearned")
    return math.inf if ours is None or not math.isfinite(ours) else float(ours)


def _untouched_gap(loaded: Any, seed: int) -> float:
    """The untouched model's Avg.Gap on one loaded request: that seed's Retrain (trained, or read from the cache)
    and the model's own evaluation, which every later run on the request shares."""
    from .metrics.registry import avg_gap

    reference = loaded.reference(seed)
    return float(avg_gap(loaded.original(seed, reference).metrics, reference.metrics))


def _safe_gap(loaded: Any, method: str, settings: Any, seed: int) -> float:
    """The method's Avg.Gap, or infinity when the run fails there (a best trial diverging on a fresh seed)."""
    try:
        return _gap(loaded, method, settings, seed)
    except Cancelled:
        raise
    except UnlearnError:
        return math.inf


def _tune_method(name: str, units: list[tuple[Any, int]], none_gaps: list[float], fixed: Mapping[str, Any],
                 trials: int, timeout: float | None, progress: ProgressFn | None,
                 validation: list[tuple[Any, int]] = (), none_validation: list[float] = (),
                 margin: float = 0.0) -> MethodTuning:
    """One method's TPE search over the (proxy, seed) units, the defaults as its first trial; then the best
    trial once more on the ``validation`` units (fresh seeds), where it is judged against ``none``."""
    import optuna

    from .fields import default_of
    from .methods import get_method

    method = get_method(name)
    space = {k: r for k, r in search_space(method.settings_cls).items() if k not in fixed}  # never empty: checked
    defaults = {f.name: default_of(f) for f in dataclasses.fields(method.settings_cls) if f.name in space}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=units[0][1]),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0))
    study.enqueue_trial(defaults)

    def objective(trial: Any) -> float:
        raise_if_cancelled()
        values = {k: r.suggest(trial, k) for k, r in space.items()}
        gaps: list[float] = []
        try:
            settings = method.settings({**fixed, **values})
            for i, (proxy, seed) in enumerate(units):
                gaps.append(_gap(proxy, name, settings, seed))
                running = _mean(gaps)
                trial.report(running, i)
                if progress is not None:
                    progress({"phase": f"tune {name}", "trial": trial.number, "trials": trials, "proxy": i,
                              "proxies": len(units), "avg_gap": running})
                if trial.number > 0 and i < len(units) - 1 and (
                        running > LOST_FACTOR * _mean(none_gaps[:i + 1]) + 1.0 or trial.should_prune()):
                    raise optuna.TrialPruned()
        except Cancelled:
            raise
        except UnlearnError as exc:  # settings the method refuses, or a run that diverged: a failed trial
            trial.set_user_attr("failed", str(exc))
            raise optuna.TrialPruned() from None
        trial.set_user_attr("gaps", gaps)
        return running

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials, timeout=timeout)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        reasons = [t.user_attrs["failed"] for t in study.trials if "failed" in t.user_attrs]
        raise UnlearnError(f"no trial of '{name}' finished ({len(reasons)} of {len(study.trials)} failed"
                           + (f", the last: {reasons[-1]}" if reasons else "") + "): allow more trials or seconds")
    best = min(done, key=lambda t: t.value)
    first = study.trials[0]
    best_settings = method.settings({**fixed, **best.params})
    checked = [_safe_gap(proxy, name, best_settings, seed) for proxy, seed in validation]
    return MethodTuning(
        method=method.name, settings={**dict(fixed), **best.params}, proxy_avg_gap=float(best.value),
        proxy_avg_gaps=list(best.user_attrs["gaps"]),
        defaults_proxy_avg_gap=float(first.value) if first.state == optuna.trial.TrialState.COMPLETE else None,
        none_proxy_avg_gap=_mean(none_gaps), trials=len(study.trials),
        pruned=sum(t.state == optuna.trial.TrialState.PRUNED and "failed" not in t.user_attrs for t in study.trials),
        failed=sum("failed" in t.user_attrs for t in study.trials), seconds=time.perf_counter() - t0,
        budget={"trials": trials, "seconds": timeout}, none_proxy_avg_gaps=list(none_gaps),
        validation_avg_gaps=checked, none_validation_avg_gaps=list(none_validation), margin=margin)


@honours_cancel
def run_tuning(config: RunConfig, methods: Sequence[str] = DEFAULT_METHODS, *, proxies: int = DEFAULT_PROXIES,
               trials: int = DEFAULT_TRIALS, timeout: float | None = None, settings: Mapping[str, Any] | None = None,
               pool_seed: int = POOL_SEED, model: Any = None, processor: Any = None, dataset: Any = None,
               token: str | None = None, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None) -> Tuning:
    """Tune ``methods`` for ``config``'s request on ``proxies`` proxy requests (the real request is never run).

    ``trials`` and ``timeout`` (seconds) bound each method's search; ``settings``: fixed overrides (as
    :func:`hf_unlearn.compare.method_settings` reads them) that are not searched.
    """
    from .compare import method_settings, per_method
    from .methods import get_method
    from .session import load

    if trials < 1:
        raise UnlearnError(f"trials must be at least 1, got {trials}")
    if timeout is not None and timeout <= 0:
        raise UnlearnError(f"the time budget must be a positive number of seconds, got {timeout}")
    names = [m for m in dict.fromkeys(get_method(m).name for m in methods) if m != NONE]
    if not names:
        raise UnlearnError("name at least one method to tune ('none' has nothing to tune)")
    method_settings(names, settings)  # unknown names and bad values are errors before anything is loaded
    fixed = per_method(names, settings)
    for name in names:
        if not {k for k in search_space(get_method(name).settings_cls) if k not in fixed[name]}:
            raise UnlearnError(f"method '{name}' has nothing left to tune (no declared ranges, or every one fixed "
                               "with --set): leave it out of --methods")
    if config.retrain_settings is None:
        config = replace(config, reference="retrain")
    seeds = list(config.options.seeds or (config.options.seed, config.options.seed + 1))
    fresh = [max(seeds) + 1 + i for i in range(len(seeds))]  # the validation seeds: none of the search's
    t0 = time.perf_counter()
    loaded = load(config, model=model, processor=processor, dataset=dataset, token=token)
    if timeout is not None and loaded.engine.world > 1:
        raise UnlearnError("--timeout cannot bound a tuning under several processes (each would stop after its own "
                           "number of trials): give --trials alone")
    specs = proxy_requests(config.forget, loaded.splits.training(), proxies, pool_seed)
    proxy_loaded = [loaded.for_request(p.spec) for p in specs]
    loaded.engine.progress = None  # a tuner's progress is its trials, not each training step
    units = [(p, seed) for p in proxy_loaded for seed in seeds]
    validation = [(p, seed) for p in proxy_loaded for seed in fresh]
    t_ref = time.perf_counter()
    # each unit's Retrain (cached across tunings) and the untouched model's distance to it
    none_gaps = [_untouched_gap(p, seed) for p, seed in units]
    none_validation = [_untouched_gap(p, seed) for p, seed in validation]
    reference_seconds = time.perf_counter() - t_ref
    cached = sum(bool(getattr(p.references.get(seed), "cached", False)) for p, seed in units + validation)
    margin = one_example(len(loaded.data.forget_rows))
    tuned: dict[str, MethodTuning] = {}
    failed: dict[str, str] = {}
    for name in names:  # one method failing (every trial diverged, say) costs the others nothing
        try:
            tuned[name] = _tune_method(name, units, none_gaps, fixed[name], trials, timeout, progress, validation,
                                       none_validation, margin)
        except Cancelled:
            raise
        except UnlearnError as exc:
            failed[name] = str(exc)
    if not tuned:
        raise UnlearnError(f"no method could be tuned: {'; '.join(f'{k}: {v}' for k, v in failed.items())}")
    request = {"kind": config.forget.kind, "description": config.forget.describe(),
               "n_forget": int(len(loaded.data.forget_rows))}
    proxy_records = [{"description": s.description, "kind": s.spec.kind, "n_forget": int(len(p.data.forget_rows)),
                      "retrain_s": [getattr(p.references.get(seed), "seconds", None) for seed in seeds + fresh],
                      "cached": [bool(getattr(p.references.get(seed), "cached", False)) for seed in seeds + fresh]}
                     for s, p in zip(specs, proxy_loaded, strict=True)]
    return Tuning(request, proxy_records, {"model": loaded.model_res.to_dict(), "dataset": loaded.data_res.to_dict()},
                  seeds, tuned, time.perf_counter() - t0, reference_seconds, cached, validation_seeds=fresh,
                  failed=failed)


def tune(model: str, dataset: str, forget: Any, methods: Sequence[str] = DEFAULT_METHODS, *,
         proxies: int = DEFAULT_PROXIES, trials: int = DEFAULT_TRIALS, timeout: float | None = None,
         settings: Mapping[str, Any] | None = None, output: str | Path | None = None, token: str | None = None,
         progress: ProgressFn | None = None, cancel: threading.Event | None = None, **keywords: Any) -> Tuning:
    """Tune methods for a request on proxy requests: ``hf-unlearn tune`` from Python.

    ``keywords`` are ``unlearn(...)``'s configuration keywords (``retrain_settings``, ``seeds``: each trial runs on
    every proxy with each of them, default the seed and the next one, …). The result is
    kept in the tuned-settings store (the app offers it) and, with ``output``, written as a settings file for
    ``hf-unlearn run --settings FILE``.
    """
    from .compare import several_methods_keywords

    several_methods_keywords("tune", keywords)
    config = RunConfig.from_keywords(model=model, dataset=dataset, forget=forget, method="ft", reference="retrain",
                                     **keywords)
    tuning = run_tuning(config, methods, proxies=proxies, trials=trials, timeout=timeout, settings=settings,
                        token=token, progress=progress, cancel=cancel)
    remember(config, tuning)
    if output is not None:
        tuning.save(output)
    return tuning


__all__ = ["DEFAULT_METHODS", "MethodTuning", "Tuning", "recall", "remember", "run_tuning", "source_key", "store_key",
           "tune"]
