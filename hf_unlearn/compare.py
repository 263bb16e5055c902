"""Several methods on one request, against the same Retrain references: the choice users come to make.

Every method of a comparison runs on sources loaded once, with each seed's
Retrain reference trained (or read from the cache) once and shared, so the
methods differ in nothing but themselves. The result is a table of mean ± std
over seeds (UA, RA, TA, MIA-efficacy, MIA-loss, Avg.Gap, unlearning time),
one verdict per method, and ``pareto.png``: Avg.Gap against unlearning time,
one point per method with its spread, where the lower left is better.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .cancel import honours_cancel
from .config import RunConfig
from .engine import ProgressFn
from .errors import Cancelled, UnlearnError
from .methods import NONE, get_method
from .report import UnlearnReport, library_versions
from .seeds import combine_seeds, mean_std

#: the methods ``hf-unlearn compare`` runs when none are named: the two seed methods and two baselines
DEFAULT_METHODS = ("rbm", "minnorm-og", "salun", "ft")
#: seeds of a comparison when none are given (a comparison is about spread as much as means)
DEFAULT_SEEDS = (0, 1, 2)
#: how a method's row is labelled in the table when its name alone would not say what it is
ROW_NAMES = {NONE: "none (untouched)"}
#: the comparison table's columns: (metric key or "avg_gap" / "rte_s", header)
COLUMNS = (("ua", "UA"), ("ra", "RA"), ("ta", "TA"), ("mia_efficacy", "MIA-efficacy"), ("mia_loss", "MIA-loss"),
           ("avg_gap", "Avg.Gap"), ("rte_s", "RTE (s)"))


@dataclass
class Comparison:
    """Each method's report over the seeds (mean ± std and per-seed values), and the comparison's wall time."""

    reports: dict[str, UnlearnReport]
    seeds: tuple[int, ...]
    seconds: float
    versions: dict[str, str] = field(default_factory=library_versions)
    #: methods that failed on some seed (diverged, say), with the one-line reason: they have no row
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def first(self) -> UnlearnReport:
        return next(iter(self.reports.values()))

    def cell(self, report: UnlearnReport, model: str, key: str) -> tuple[float | None, float | None]:
        """(mean, std) of one column for one model row ("original", "unlearned", "retrain") of a report."""
        if key == "avg_gap":
            return ((report.avg_gap or {}).get(model), (report.avg_gap_std or {}).get(model))
        if key == "rte_s":
            if model == "unlearned":
                return report.rte_s, report.rte_s_std
            if model == "retrain":
                return report.retrain_s, mean_std([s.get("retrain_s") for s in report.per_seed or []])[1]
            return None, None
        mean = (report.metrics.get(model) or {}).get(key)
        std = ((report.metrics_std or {}).get(model) or {}).get(key)
        return mean, std

    def rows(self) -> list[tuple[str, list[tuple[float | None, float | None]]]]:
        """The table's rows: each method (``none``: the untouched model), then Retrain (the gold standard)."""
        first = self.first
        out = [] if NONE in self.reports else \
            [("original (untouched)", [self.cell(first, "original", k) for k, _ in COLUMNS])]
        out += [(ROW_NAMES.get(name, name), [self.cell(rep, "unlearned", k) for k, _ in COLUMNS])
                for name, rep in self.reports.items()]
        if first.metrics.get("retrain"):
            out.append(("retrain (gold standard)", [self.cell(first, "retrain", k) for k, _ in COLUMNS]))
        return out

    def markdown(self) -> str:
        """The table (mean ± std over the seeds), the reference it was measured against, and the verdicts."""
        from .metrics.registry import fmt_pm
        from .verdict import comparison_verdict, reference_line, verdict

        first = self.first
        gap = first.gap_label()
        headers = ["method", *(gap if k == "avg_gap" else h for k, h in COLUMNS)]
        lines = [f"Forget {first.forget.get('description')} ({first.data.get('n_forget')} forget / "
                 f"{first.data.get('n_retain')} retain / {first.data.get('n_test')} test rows); seeds "
                 f"{', '.join(map(str, self.seeds))}; metrics in % as mean ± std over the seeds.", "",
                 "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join([name, *(fmt_pm(*c) for c in cells)]) + " |" for name, cells in self.rows()]
        lines += ["", reference_line(first) if first.retrain else "No Retrain reference.", "",
                  f"Comparison wall time: {self.seconds:.1f} s.", ""]
        overall = comparison_verdict(self.reports)
        if overall:
            lines += [f"**{overall}.**", ""]
        lines += [f"- **{name}**: {verdict(rep)}" for name, rep in self.reports.items()]
        lines += [f"- **{name}**: failed ({why}); it has no row" for name, why in self.failed.items()]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), "seconds": self.seconds, "versions": self.versions,
                "columns": [h for _, h in COLUMNS],
                "table": [{"row": name, **{h: {"mean": m, "std": s} for (_, h), (m, s) in zip(COLUMNS, cells,
                                                                                              strict=True)}}
                          for name, cells in self.rows()],
                "reports": {name: rep.to_dict() for name, rep in self.reports.items()}, "failed": self.failed}

    def plot_pareto(self, path: str | Path) -> Path:
        """Avg.Gap against unlearning time, one point per method with error bars (lower left is better)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        times = []
        for i, (name, rep) in enumerate(self.reports.items()):
            if name == NONE:  # the untouched model is the dashed line; its ~0 s time would stretch the axis
                continue
            (t, t_sd), (g, g_sd) = self.cell(rep, "unlearned", "rte_s"), self.cell(rep, "unlearned", "avg_gap")
            if t is None or g is None:
                continue
            times.append(t)
            ax.errorbar(t, g, xerr=t_sd or 0, yerr=g_sd or 0, fmt="o", capsize=4, color=f"C{i}")
            ax.annotate(name, (t, g), textcoords="offset points", xytext=(6, 6), fontsize=9, color=f"C{i}")
        first = self.first
        untouched = (first.avg_gap or {}).get("original")
        if first.retrain_s:
            ax.axvline(first.retrain_s, ls=":", color="grey", lw=1)
            times.append(first.retrain_s)
        if times and max(times) / max(min(times), 1e-9) > 20:
            ax.set_xscale("log")
        else:
            ax.set_xlim(left=0, right=max(times) * 1.15 if times else None)
        if untouched is not None:  # labelled at the right, away from the fast methods on the left
            ax.axhline(untouched, ls="--", color="grey", lw=1)
            ax.text(ax.get_xlim()[1], untouched, "untouched model ", ha="right", va="bottom", fontsize=8,
                    color="grey")
        if first.retrain_s:
            ax.text(first.retrain_s, 0, " retraining", rotation=90, va="bottom", fontsize=8, color="grey")
        ax.set_xlabel("unlearning time (s, mean ± std over seeds)")
        ax.set_ylabel("Avg.Gap to Retrain (lower is closer)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"Forget {first.forget.get('description')}: {len(self.seeds)} seeds")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def save(self, output_dir: str | Path, overwrite: bool = False) -> Path:
        """Write ``comparison.json``, ``comparison.md`` and ``pareto.png`` (into a new or empty folder)."""
        from .output import check_output_dir

        out = check_output_dir(output_dir, overwrite)
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.json").write_text(json.dumps(_clean(self.to_dict()), indent=2, allow_nan=False))
        (out / "comparison.md").write_text(self.markdown())
        self.plot_pareto(out / "pareto.png")
        return out


def _clean(obj: Any) -> Any:
    from .report import _clean as clean

    return clean(obj)


def split_keywords(keywords: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(configuration keywords, the rest: method settings) of a flat mapping (the CLI's, ``compare()``'s)."""
    from .config import TOP_LEVEL, config_keywords

    known = set(config_keywords()) | set(TOP_LEVEL)
    return ({k: v for k, v in keywords.items() if k in known}, {k: v for k, v in keywords.items() if k not in known})


def per_method(methods: Sequence[str], settings: Mapping[str, Any] | None,
               under: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Each method's overrides (as given, unchecked) from one mapping: ``{"epochs": 3}`` goes to every method that
    has the setting, ``{"rbm.rho": 0.5}`` or ``{"rbm": {"rho": 0.5}}`` to one. ``under``: per-method values the
    mapping's own override (a tuning's settings, under the user's edits). A name no method has is an error."""
    per: dict[str, dict[str, Any]] = {m: {} for m in methods}
    shared: dict[str, Any] = {}
    for key, value in (settings or {}).items():
        if key in per and isinstance(value, Mapping):
            per[key].update(value)
        elif "." in key:
            name, setting = key.split(".", 1)
            if name not in per:
                raise UnlearnError(f"setting '{key}' names method '{name}', which is not among "
                                   f"{', '.join(methods)}")
            per[name][setting] = value
        else:
            shared[key] = value
    owns = {m: {f["name"] for f in get_method(m).describe_settings()} for m in methods}
    unused = [k for k in shared if not any(k in own for own in owns.values())]
    if unused:
        raise UnlearnError(f"no method named has a setting '{unused[0]}' (see hf-unlearn methods -v)")
    return {m: {**dict((under or {}).get(m) or {}), **{k: v for k, v in shared.items() if k in owns[m]}, **per[m]}
            for m in methods}


def several_methods_keywords(command: str, keywords: Mapping[str, Any]) -> None:
    """``compare()`` and ``tune()`` take the configuration's keywords but one method and the reference: a one-line
    error names the first keyword they do not take."""
    given, stray = split_keywords(keywords)
    wrong = sorted(stray) or sorted({"method", "reference"} & set(given))
    if wrong:
        raise UnlearnError(f"{command}() has no keyword '{wrong[0]}': the methods go in methods=(...), their "
                           "settings in settings={...}, and the reference is always Retrain")


def method_settings(methods: Sequence[str], settings: Mapping[str, Any] | None,
                    under: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Each method's checked settings (:func:`per_method`), keyed by its registered name."""
    return {get_method(m).name: get_method(m).settings(values)
            for m, values in per_method(methods, settings, under).items()}


@honours_cancel
def run_comparison(config: RunConfig, methods: Sequence[str] = DEFAULT_METHODS,
                   settings: Mapping[str, Any] | None = None, *, model: Any = None, processor: Any = None,
                   dataset: Any = None, token: str | None = None, progress: ProgressFn | None = None,
                   cancel: threading.Event | None = None,
                   under: Mapping[str, Mapping[str, Any]] | None = None) -> Comparison:
    """Run ``methods`` × the configuration's seeds on sources loaded once, against shared Retrain references.

    ``under``: per-method settings (a tuning's) that ``settings`` override (:func:`per_method`).

    ``progress`` events carry ``task``/``tasks`` (which of the method × seed runs this is) and ``task_name``.
    """
    from .api import run_seed
    from .session import load

    if not methods:
        raise UnlearnError("name at least one method to compare")
    names = tuple(get_method(m).name for m in methods)  # an alias and its method are one method
    if len(set(names)) != len(names):
        raise UnlearnError(f"each method may be compared once, got {', '.join(methods)}")
    # every comparison runs ``none`` too: an edit is only worth shipping if it beats leaving the model alone
    checked = method_settings(names if NONE in names else (*names, NONE), settings, under)
    if config.retrain_settings is None:
        config = replace(config, reference="retrain")
    seeds = config.options.run_seeds
    t0 = time.perf_counter()
    loaded = load(config, model=model, processor=processor, dataset=dataset, token=token, progress=progress)
    tasks = [(seed, name) for seed in seeds for name in checked]
    by_method: dict[str, list[UnlearnReport]] = {name: [] for name in checked}
    failed: dict[str, str] = {}
    for i, (seed, name) in enumerate(tasks):
        if name in failed:
            continue
        if progress is not None:
            def tagged(event: dict[str, Any], i: int = i, label: str = f"{name}, seed {seed}") -> None:
                progress({**event, "task": i, "tasks": len(tasks), "task_name": label})

            loaded.engine.progress = tagged
        try:
            result = run_seed(loaded, name, checked[name], seed)
        except Cancelled:
            raise
        except UnlearnError as exc:  # one method diverging does not cost the others their comparison
            if name == NONE:
                raise
            failed[name] = f"seed {seed}: {exc}"
            continue
        by_method[name].append(result.report)
        del result
    reports = {name: combine_seeds(reps) if len(reps) > 1 else reps[0] for name, reps in by_method.items()
               if name not in failed}
    return Comparison(reports, tuple(seeds), time.perf_counter() - t0, failed=failed)


def compare(model: str, dataset: str, forget: Any, methods: Sequence[str] = DEFAULT_METHODS, *,
            seeds: Sequence[int] = DEFAULT_SEEDS, settings: Mapping[str, Any] | None = None,
            output_dir: str | Path | None = None, token: str | None = None, progress: ProgressFn | None = None,
            cancel: threading.Event | None = None, **keywords: Any) -> Comparison:
    """Compare unlearning methods on one request: ``hf-unlearn compare`` from Python.

    ``keywords`` are ``unlearn(...)``'s configuration keywords (``retrain_settings``, ``retrain_from``,
    ``mixed_precision``, …); ``settings`` the methods' (see :func:`method_settings`). With ``output_dir``
    the comparison's three files are written there.
    """
    several_methods_keywords("compare", keywords)
    config = RunConfig.from_keywords(model=model, dataset=dataset, forget=forget, method=methods[0] if methods
                                     else "ft", reference="retrain", seeds=tuple(seeds), **keywords)
    comparison = run_comparison(config, methods, settings, token=token, progress=progress, cancel=cancel)
    if output_dir is not None:
        comparison.save(output_dir)
    return comparison
