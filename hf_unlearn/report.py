"""A run's record: JSON with a schema version, a markdown table and a per-class plot.

The report is what a model card, the app and the benchmark tables are built
from, so it holds everything needed to interpret and repeat the run, and
nothing that reveals the forget data (only its size and a digest of its ids).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnlearnError

#: 4: an audit's record (``audit``: the forgetting-quality scores over N models of each kind), the requests served
#: (``lineage``) and the newest one's own metrics (``newest_request``);
#: 3: the Retrain reference's record (``retrain``) and several seeds (``seeds``, ``per_seed``, ``*_std``);
#: 2: the forget record holds its kind's fields only (1 held every kind's, unused ones null). 1 and 2 still load
SCHEMA_VERSION = 4

def library_versions() -> dict[str, str]:
    """Versions of everything that shapes the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("hf-unlearn", "torch", "transformers", "datasets", "accelerate", "huggingface-hub", "scikit-learn"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class UnlearnReport:
    """Everything recorded about one unlearning run (metrics in percent, times in seconds)."""

    method: str
    settings: dict[str, Any]
    forget: dict[str, Any]
    sources: dict[str, Any]
    data: dict[str, Any]
    class_names: list[str]
    seed: int
    metrics: dict[str, dict[str, Any] | None]
    avg_gap: dict[str, float] | None = None
    rte_s: float = 0.0
    retrain_s: float | None = None
    reference: str | None = None
    #: how the Retrain reference was made: {"from": "scratch"|"base", "base": {id, commit, ...}, "named_by",
    #: "recipe", "recipe_source": "given"|"partial"|"default", "recipe_given", "cached", "seconds"}
    retrain: dict[str, Any] | None = None
    #: several seeds: the seeds, and each seed's {seed, metrics, avg_gap, rte_s, retrain_s, retrain};
    #: ``metrics``, ``avg_gap`` and ``rte_s`` then hold the means and ``*_std`` the standard deviations
    seeds: list[int] | None = None
    per_seed: list[dict[str, Any]] | None = None
    metrics_std: dict[str, dict[str, Any] | None] | None = None
    avg_gap_std: dict[str, float] | None = None
    rte_s_std: float | None = None
    #: an audit of the method on this request (``hf-unlearn audit``): N, δ, the audit metrics' values
    #: (``metrics``: forget_quality, forget_quality_ceiling, final_score) and the largest ε N can measure
    audit: dict[str, Any] | None = None
    #: every deletion request the model has served, this one last: kind, description, row count, digest, method,
    #: the model it was applied to (never the rows: they are in the local ledger)
    lineage: list[dict[str, Any]] | None = None
    #: with requests served before: the newest request's own metrics ({"n_forget", "metrics", "avg_gap"}); the
    #: report's ``metrics`` are over the union of every request's rows
    newest_request: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=library_versions)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION

    @property
    def rte_fraction(self) -> float | None:
        """Unlearning time as a fraction of retraining time, when a retrain was timed."""
        return None if not self.retrain_s else self.rte_s / self.retrain_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rte_fraction"] = self.rte_fraction
        return _clean(d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnlearnReport:
        version = d.get("schema_version")
        if version == 1:
            d = _upgrade_v1(d)
        elif version in (2, 3):  # schemas 3 and 4 only added fields
            d = {**d, "schema_version": SCHEMA_VERSION}
        elif version != SCHEMA_VERSION:
            raise UnlearnError(
                f"report schema version {version} is not {SCHEMA_VERSION}: re-run with this version"
            )
        d = {k: v for k, v in d.items() if k != "rte_fraction"}
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> UnlearnReport:
        p = Path(path)
        if p.is_dir():
            p = p / "report.json"
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except FileNotFoundError:
            raise UnlearnError(f"no report at '{p}': give a report.json written by hf-unlearn") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise UnlearnError(f"'{p}' is not an hf-unlearn report ({exc})") from None

    def model_label(self, name: str) -> str:
        """How a row of the metrics table names a model ("rbm (unlearned)", "original", "retrain")."""
        return f"{self.method} (unlearned)" if name == "unlearned" else name

    def table_rows(self) -> tuple[list[str], list[list[Any]]]:
        """The metrics table as headers and rows of raw values: a column per registered table metric that has
        a value in some row, then Avg.Gap. Over several seeds the values are the means (:meth:`table_std`)."""
        from .metrics.registry import shown_columns

        cols = shown_columns(self.metrics.values())
        rows = [[self.model_label(name)] + [m.get(c.key) for c in cols] + [(self.avg_gap or {}).get(name)]
                for name, m in self.metrics.items() if m]
        return ["model", *(c.label for c in cols), self.gap_label()], rows

    def gap_label(self) -> str:
        """"Avg.Gap", or a label that says Retrain's recipe was hf-unlearn's guess (never the original's)."""
        source = (self.retrain or {}).get("recipe_source")
        if source == "default":
            return "Avg.Gap (Retrain with a default recipe: original unknown)"
        if source == "partial":
            return "Avg.Gap (Retrain's recipe partly hf-unlearn's defaults)"
        return "Avg.Gap"

    def table_std(self) -> list[list[Any]] | None:
        """The standard deviations over seeds of :meth:`table_rows`' cells (None for a single seed)."""
        from .metrics.registry import shown_columns

        if not self.metrics_std:
            return None
        cols = shown_columns(self.metrics.values())
        return [[self.model_label(name)] + [(self.metrics_std.get(name) or {}).get(c.key) for c in cols]
                + [(self.avg_gap_std or {}).get(name)] for name, m in self.metrics.items() if m]

    def table_cells(self) -> tuple[list[str], list[list[str]]]:
        """The table as text: two decimals, "mean ± std" over several seeds, "–" where a value is missing."""
        from .metrics.registry import fmt_pm

        headers, rows = self.table_rows()
        spread = self.table_std() or [[None] * len(row) for row in rows]
        return headers, [[row[0], *(fmt_pm(v, sd) for v, sd in zip(row[1:], sd_row[1:], strict=True))]
                         for row, sd_row in zip(rows, spread, strict=True)]

    def markdown(self) -> str:
        """The metrics table (original, unlearned, reference) with Avg.Gap."""
        headers, rows = self.table_cells()
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)

    def requests_text(self) -> str:
        """What a run on a model that served earlier requests measured: the union, and the newest one alone."""
        from .metrics.registry import fmt

        newest = self.newest_request or {}
        served = len(self.lineage or [])
        seed = f" (seed {self.seed}'s run)" if self.seeds and len(self.seeds) > 1 else ""
        lines = [f"request {served} this model serves ({served - 1} before it, from its ledger): the table is over "
                 f"the union of every request's {self.data.get('n_forget')} rows; this request's "
                 f"{newest.get('n_forget')} rows alone{seed} (UA and MIA-efficacy are theirs; RA and TA, in their "
                 "Avg.Gap, are the whole retain and test sets'):"]
        for model, metrics in (newest.get("metrics") or {}).items():
            gap = (newest.get("avg_gap") or {}).get(model)
            lines.append(f"  {self.model_label(model)}: UA {fmt(metrics.get('ua'))}, MIA-efficacy "
                         f"{fmt(metrics.get('mia_efficacy'))}" + (f", Avg.Gap {fmt(gap)}" if gap is not None else ""))
        return "\n".join(lines)

    def values_note(self) -> str:
        """"2 of the 40 IDs asked for match no training row" for a value-list request (counts, never the values)."""
        counts = self.data.get("forget_values") or {}
        if not counts.get("unmatched"):
            return ""
        return (f"{counts['unmatched']} of the {counts['requested']} values asked for match no training row "
                "(not listed, as they may identify people)")

    def seeds_text(self) -> str:
        """"seed 0", or "seeds 0, 1, 2 (mean ± std)"."""
        if self.seeds and len(self.seeds) > 1:
            return f"seeds {', '.join(map(str, self.seeds))} (mean ± std)"
        return f"seed {self.seed}"

    def rte_text(self) -> str:
        """The unlearning time, and its share of retraining when a retrain was timed."""
        text = f"{self.rte_s:.2f} s" + (f" ± {self.rte_s_std:.2f}" if self.rte_s_std is not None else "")
        if self.rte_fraction:
            text += f" = {self.rte_fraction:.1%} of retraining ({self.retrain_s:.2f} s)"
        return text

    def summary(self) -> str:
        """A few lines for the terminal: the request, the table, the reference, the time and the verdict."""
        from .verdict import reference_line, verdict

        fc = self.forget
        out = [f"method {self.method} | forget {fc.get('description')} | "
               f"{self.data.get('n_forget')} forget / {self.data.get('n_retain')} retain / "
               f"{self.data.get('n_test')} test rows | {self.seeds_text()}",
               self.markdown()]
        if self.values_note():
            out.insert(1, self.values_note())
        if self.retrain:
            out.append(reference_line(self))
        out += [f"unlearning time (RTE): {self.rte_text()}", f"verdict: {verdict(self)}"]
        if self.newest_request:
            out.append(self.requests_text())
        if self.audit:
            from .audit import explain

            out.append(f"forgetting audit: {explain(self.audit)}")
        return "\n".join(out)

    def plot_per_class(self, path: str | Path) -> Path:
        """Bar chart of per-class test accuracy for every model in the report (PNG): the forgotten classes
        shaded and their names in red, the legend outside the bars, the title inside the image."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        names = [n for n, m in self.metrics.items() if m]
        k = len(self.class_names)
        forgotten = set(int(i) for i in self.forget.get("class_ids") or [])
        fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * k + 2.5), PLOT_HEIGHT))
        width = 0.8 / max(len(names), 1)
        for c in forgotten:
            ax.axvspan(c - 0.5, c + 0.5, color="#fde2e2", zorder=0)
        for i, n in enumerate(names):
            vals = [np.nan if v is None else v for v in self.metrics[n]["per_class_test_acc"]]
            ax.bar(np.arange(k) + i * width - 0.4 + width / 2, vals, width, label=self.model_label(n), zorder=2)
        ax.set_xticks(np.arange(k), [str(c)[:12] for c in self.class_names], rotation=45 if k > 10 else 0)
        for c, tick in enumerate(ax.get_xticklabels()):
            if c in forgotten:
                tick.set_color("#c62828")
                tick.set_fontweight("bold")
        ax.set_xlim(-0.6, k - 0.4)
        ax.set_xlabel("class" + (" (forgotten: shaded, in red)" if forgotten else ""))
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 105)
        ax.set_title(f"Per-class test accuracy: {self.method}, forget {self.forget.get('description')}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=PLOT_DPI)
        plt.close(fig)
        return path

    def document(self, images: dict[str, str]) -> str:
        """The run as a Markdown report a person can read and share: the request, the verdict, the metrics table
        with what each column means, the reference and the plots (``images``: caption → file name beside it)."""
        from .verdict import reference_line, verdict

        lines = [f"# Unlearning report: {self.method}, forget {self.forget.get('description')}", "",
                 f"- model: {_source_text(self.sources.get('model'))}; dataset: "
                 f"{_source_text(self.sources.get('dataset'))}",
                 f"- {self.data.get('n_forget')} forget / {self.data.get('n_retain')} retain / "
                 f"{self.data.get('n_test')} test rows; {self.seeds_text()}",
                 f"- unlearning time: {self.rte_text()}", "", f"**Verdict:** {verdict(self)}.", "",
                 "## Metrics (%)", "", self.markdown(), "", metrics_legend(), ""]
        if self.retrain:
            lines += [reference_line(self) + ".", ""]
        for caption, name in images.items():
            lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
        return "\n".join(lines)


def _source_text(source: dict[str, Any] | None) -> str:
    """A source as a shared report names it: its Hub id, never a local path (the app's server folders)."""
    source = source or {}
    return "a local folder" if source.get("local") else f"`{source.get('id')}`"


#: the app shows the report's plots side by side: one height, one resolution
PLOT_HEIGHT = 3.6
PLOT_DPI = 110


def metrics_legend() -> str:
    """How to read the metrics table, from the registry: each column's meaning and which way is better."""
    from .metrics import table_metrics

    better = {"higher": "↑ higher is better", "lower": "↓ lower is better",
              "retrain": "≈R the closer to Retrain the better"}
    out = ["How to read it: the goal is **Retrain**, the model trained without the forget data. Avg.Gap is the "
           "mean distance to Retrain over the metrics marked *(in Avg.Gap)*: ↓ lower is better, 0 means "
           "indistinguishable from Retrain; the untouched model's Avg.Gap is what an edit has to beat.", ""]
    out += [f"- **{m.label}** ({better[m.direction]}){' *(in Avg.Gap)*' if m.in_gap else ''}: {m.meaning}"
            for m in table_metrics()]
    return "\n".join(out)


#: what a report's forget record holds besides the request itself (``ForgetSpec.to_dict()``)
FORGET_DERIVED = ("description", "n_forget", "forget_ids_sha256", "class_ids", "class_names")


def forget_ids_digest(rows: np.ndarray) -> str:
    """SHA-256 of the sorted forget row ids: identifies the request without revealing the data."""
    text = ",".join(str(int(r)) for r in np.sort(rows))
    return hashlib.sha256(text.encode()).hexdigest()



def forget_record(spec: Any, forget_rows: Any, class_ids: list[int], class_names: list[str]) -> dict[str, Any]:
    """The report's record of a request: the kind's record of its fields, a description, the forget set's size
    and a digest of its rows (never the rows), and the forgotten classes."""
    values = (spec.describe(), int(len(forget_rows)), forget_ids_digest(forget_rows), list(class_ids),
              [class_names[i] for i in class_ids])
    return {**spec.to_dict(), **dict(zip(FORGET_DERIVED, values, strict=True))}


def _upgrade_v1(d: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 report as schema 2: its forget record keeps only its own kind's fields."""
    from .forget import available_kinds, get_kind
    from .forget.spec import COMMON

    forget = dict(d.get("forget") or {})
    if forget.get("kind") in available_kinds():
        own = set(get_kind(forget["kind"]).field_names()) | {"kind", *COMMON, *FORGET_DERIVED}
        forget = {k: v for k, v in forget.items() if k in own}
    return {**d, "forget": forget, "schema_version": SCHEMA_VERSION}


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null, tuples lists, numpy scalars floats."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
