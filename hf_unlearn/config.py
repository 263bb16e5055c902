"""One run configuration, built the same way by the Python API, the CLI and the app.

``RunConfig`` holds what to load (:class:`ModelSource`, :class:`DataSource`),
what to forget (:class:`~hf_unlearn.forget.ForgetSpec`), the method and its
checked settings, the reference, and how to execute (:class:`RunOptions`).
They are plain values so that a run can be recorded in its report, repeated
from it, and compared with another run without holding any model or data.

Every field is declared once, with :func:`~hf_unlearn.fields.doc`; its
keyword in ``unlearn(...)``, its CLI flag and its app control all derive from
that declaration (:func:`config_keywords`), and :meth:`RunConfig.from_keywords`
is the one place a flat mapping of them becomes a checked configuration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import fields as F
from .errors import UnlearnError
from .fields import doc
from .forget import ForgetSpec

MIXED_PRECISION = ("no", "bf16", "fp16")
#: where Retrain starts (see :func:`hf_unlearn.reference.resolve_start`)
RETRAIN_FROM = ("auto", "base", "scratch")
#: the settings that make a training recipe: a Retrain recipe that gives them all is "given", some "partial"
RECIPE_KEYS = ("epochs", "lr", "batch_size", "optimizer", "weight_decay", "lr_schedule", "augment")


def recipe_source(settings: Any) -> str:
    """"given" (a whole recipe: a settings dataclass, or every one of :data:`RECIPE_KEYS`), "partial" (some of
    them; hf-unlearn's defaults fill the rest) or "default" (none: the recipe is hf-unlearn's guess)."""
    if settings is None:
        return "default"
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return "given"
    given = {str(k) for k in settings}
    return "given" if given >= set(RECIPE_KEYS) else "partial" if given & set(RECIPE_KEYS) else "default"


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` (or ``"0 1 2"``) as seeds; a one-line error for anything else."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise UnlearnError(f"seeds must be integers separated by commas (0,1,2), got '{text}'") from None


@dataclass(frozen=True)
class ModelSource:
    """A model: a local directory or a Hub repo id, at an optional revision."""

    id: str = doc(help="model directory or Hub repo id", keyword="model", app="sources",
                  label="Model (Hub id or local folder)", widget={"type": "preset"})
    revision: str | None = doc(None, "model branch, tag or commit", app="details", label="model revision",
                               widget={"placeholder": "latest"})


@dataclass(frozen=True)
class DataSource:
    """A dataset: a local folder, parquet file(s) or a Hub repo id.

    ``train_split`` is the split the model was trained on (``D``);
    ``test_split`` is the held-out split used for TA and the MIA non-members.
    Column names are detected when left ``None``.
    """

    id: str = doc(help="dataset folder, parquet file or Hub repo id", keyword="dataset", app="sources",
                  label="Dataset (Hub id or folder)", widget={"type": "preset"})
    config: str | None = doc(None, "dataset configuration name", keyword="dataset_config", app="details",
                             label="config", widget={"placeholder": "default"})
    revision: str | None = doc(None, "dataset branch, tag or commit", keyword="dataset_revision", app="details",
                               label="dataset revision", widget={"placeholder": "latest"})
    train_split: str = doc("train", "split the model was trained on", app="details", label="train split")
    test_split: str | None = doc(None, "held-out split (default: test or validation)", app="details",
                                 label="test split")
    image_column: str | None = doc(None, "image column (default: detected)", app="details", label="image column")
    label_column: str | None = doc(None, "label column (default: detected)", app="details", label="label column")
    #: one pass writes each split to an on-disk, memory-mapped Arrow table, so a dataset larger than memory works
    streaming: bool = doc(False, "stream the dataset (one pass to an on-disk table; for datasets larger than memory)")


@dataclass(frozen=True)
class RunOptions:
    """How a run is executed, as opposed to what it does."""

    seed: int = doc(0, "seed of the method, the reference and the metrics' draws", app="run", label="seed")
    #: several seeds: each runs the method against its own Retrain; the report gives mean ± std and each seed's
    seeds: tuple[int, ...] | None = doc(None, "several seeds, e.g. 0,1,2: each runs the method and its own Retrain "
                                        "reference; the report gives mean ± std (overrides --seed)",
                                        parse=parse_seeds, app="run", label="seeds (e.g. 0,1,2; empty: the seed)",
                                        widget={"placeholder": "one seed"})
    mixed_precision: str = doc("no", "mixed precision of training and evaluation", choices=MIXED_PRECISION,
                               app="run", label="mixed precision")
    cpu: bool = doc(False, "run on the CPU even if a GPU is present")
    eval_batch_size: int = doc(256, "batch size of evaluation")
    cache_dir: str | None = doc(None, "where decoded tensors are cached")
    reinit_head: bool = doc(False, "new classification head for the dataset's labels")
    cache_references: bool = doc(True, "reuse a cached Retrain reference of the same request, recipe, start and "
                                 "seed (stored under the hf-unlearn cache, HF_UNLEARN_CACHE_MB bounds it)")
    ledger: str | None = doc(None, "the ledger of the requests this model already served (their rows stay "
                             "forgotten: D_f is the union); default: the model folder's unlearning_ledger.json; "
                             "'none': ignore it")

    def __post_init__(self) -> None:
        F.check_choice(self.mixed_precision, _field(RunOptions, "mixed_precision"), "mixed_precision")
        if self.eval_batch_size <= 0:
            raise UnlearnError(f"eval_batch_size must be positive, got {self.eval_batch_size}")
        if self.seeds is not None:
            seeds = (self.seeds,) if isinstance(self.seeds, int) else self.seeds
            if isinstance(seeds, str):
                seeds = parse_seeds(seeds)
            if not isinstance(seeds, (list, tuple)) or not all(
                    isinstance(s, int) and not isinstance(s, bool) for s in seeds):
                raise UnlearnError(f"seeds must be integers, e.g. (0, 1, 2); got {self.seeds!r}")
            if len(set(seeds)) != len(seeds):
                raise UnlearnError(f"seeds must differ from each other, got {', '.join(map(str, seeds))}")
            object.__setattr__(self, "seeds", tuple(seeds) or None)

    @property
    def run_seeds(self) -> tuple[int, ...]:
        """The seeds a run uses: ``seeds`` when given, else ``seed`` alone."""
        return self.seeds or (self.seed,)


def _field(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


#: the configuration's parts whose fields are flat keywords of ``unlearn(...)``, CLI flags and app inputs
SECTIONS: dict[str, type] = {"model": ModelSource, "data": DataSource, "options": RunOptions}


@dataclass(frozen=True)
class RunConfig:
    """One unlearning run: sources, request, method and settings, reference, execution options.

    Built directly or by :meth:`from_keywords`, it is checked on creation: the method exists, its settings
    (a mapping of overrides or the settings dataclass) become the method's checked settings, a Retrain
    reference gets its checked recipe, and a reference report is read and must come from Retrain.
    """

    model: ModelSource
    data: DataSource
    forget: ForgetSpec
    method: str = doc("ft", "unlearning method (see `hf-unlearn methods`)", app="run", label="Method",
                      widget={"type": "method"})
    #: the method's settings: overrides of its defaults, held as its checked settings dataclass
    settings: Any = None
    options: RunOptions = field(default_factory=RunOptions)
    reference: Any = doc(None, "'retrain' to retrain on D_r for Avg.Gap, or a Retrain report.json")
    #: the Retrain recipe (overrides, held as the ``retrain`` method's checked settings) when reference="retrain"
    retrain_settings: Any = doc(None, "the Retrain recipe, KEY=VALUE settings of the retrain method",
                                flag="--retrain-set")
    #: where Retrain starts: from scratch, from the pre-trained base the model was fine-tuned from, or auto
    retrain_from: str = doc("auto", "where Retrain starts: base (the pre-trained checkpoint the model card names "
                            "as base_model, or --retrain-base), scratch (random initialisation), or auto (base when "
                            "the model declares one, else scratch)", choices=RETRAIN_FROM, app="run",
                            label="Retrain from")
    retrain_base: str | None = doc(None, "the pre-trained checkpoint (Hub id or folder) Retrain starts from; "
                                   "default: the model card's base_model", app="details",
                                   label="Retrain base (Hub id or folder)",
                                   widget={"placeholder": "the model card's base_model"})
    #: "given" when the whole Retrain recipe was given (the original's), "partial" when part of it was,
    #: "default" when it is hf-unlearn's guess (:func:`recipe_source`)
    recipe_source: str | None = field(default=None, compare=False)
    #: the recipe settings that were given (the rest are hf-unlearn's defaults)
    recipe_given: tuple[str, ...] | None = field(default=None, compare=False)
    #: the reference report, read once when ``reference`` names one
    reference_report: Any = field(default=None, compare=False, repr=False)
    #: where the settings came from when they are a tuning's (:mod:`hf_unlearn.tuning`): recorded in the report
    tuned: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        from .methods import get_method

        for name, kind in (("model", ModelSource), ("data", DataSource), ("forget", ForgetSpec),
                           ("options", RunOptions)):
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise UnlearnError(f"RunConfig.{name} must be a {kind.__name__}, got {type(value).__name__}")
        method = get_method(self.method)
        object.__setattr__(self, "method", method.name)
        given_settings = self.settings
        object.__setattr__(self, "settings", _checked(method, self.settings))
        F.check_choice(self.retrain_from, _field(RunConfig, "retrain_from"), "retrain_from")
        recipes = (self.retrain_settings, given_settings if method.name == "retrain" else None)
        if any(isinstance(r, Mapping) and "init" in r for r in recipes):
            raise UnlearnError("the Retrain recipe has no 'init' to set: where Retrain starts is retrain_from "
                               "(--retrain-from base|scratch)")
        if self.recipe_source is None:
            # the recipe is Retrain's settings: the reference's, or the method's own in a run of Retrain itself
            raw = given_settings if method.name == "retrain" and self.reference != "retrain" else \
                self.retrain_settings
            object.__setattr__(self, "recipe_source", recipe_source(raw))
            given = () if not raw else tuple(RECIPE_KEYS) if self.recipe_source == "given" \
                else tuple(k for k in RECIPE_KEYS if k in raw)
            object.__setattr__(self, "recipe_given", given)
        recipe = _checked(get_method("retrain"), self.retrain_settings) if self.reference == "retrain" else None
        object.__setattr__(self, "retrain_settings", recipe)
        object.__setattr__(self, "reference_report", load_reference(self.reference))

    @classmethod
    def from_keywords(cls, **keywords: Any) -> RunConfig:
        """The configuration the flat keywords of ``unlearn(...)`` describe; unknown names are method settings.

        ``model``, ``dataset`` and ``forget`` are required; ``forget`` takes anything
        :func:`as_forget_spec` takes.
        """
        table = config_keywords()
        parts: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        top: dict[str, Any] = {}
        settings: dict[str, Any] = {}
        for key, value in keywords.items():
            if key in table:
                section, f = table[key]
                parts[section][f.name] = value
            elif key in TOP_LEVEL:
                top[key] = value
            else:
                settings[key] = value
        for required in ("model", "dataset"):
            if required not in keywords:
                raise UnlearnError(f"give the {required} to unlearn ({required}=...)")
        if "forget" not in top:
            raise UnlearnError("say what to forget (forget=...): a class, a list of classes, a dict or a ForgetSpec")
        built = {section: F.build(SECTIONS[section], values, f"the {section} configuration")
                 for section, values in parts.items()}
        return cls(model=built["model"], data=built["data"], forget=as_forget_spec(top["forget"]),
                   method=top.get("method") or "ft", settings=settings, options=built["options"],
                   reference=top.get("reference"), retrain_settings=top.get("retrain_settings"),
                   retrain_from=top.get("retrain_from") or "auto", retrain_base=top.get("retrain_base") or None)


def _checked(method: Any, settings: Any) -> Any:
    """``method``'s checked settings from overrides (a mapping or None), or its own settings dataclass as it is."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        if not isinstance(settings, method.settings_cls):
            raise UnlearnError(f"the settings given are {type(settings).__name__}, not method '{method.name}''s")
        settings.check()
        return settings
    return method.settings(settings)


def load_reference(reference: Any) -> Any:
    """The Retrain report a ``reference`` names (None for none or "retrain"); anything else is a one-line error."""
    from pathlib import Path

    from .report import UnlearnReport

    if reference is None or reference == "retrain":
        return None
    if isinstance(reference, UnlearnReport):
        report = reference
    elif isinstance(reference, (str, Path)):
        report = UnlearnReport.load(reference)
    else:
        raise UnlearnError("reference must be 'retrain', a report.json path or an UnlearnReport")
    if report.method != "retrain":
        raise UnlearnError(f"reference report '{reference}' is from method '{report.method}', not a retrain")
    return report


#: ``RunConfig`` fields that are keywords themselves (the sections' fields are spread out)
TOP_LEVEL = ("forget", "method", "reference", "retrain_settings", "retrain_from", "retrain_base")


def config_keywords() -> dict[str, tuple[str, dataclasses.Field]]:
    """Every flat keyword of the configuration's sections: keyword → (section, field), in declaration order."""
    return {F.keyword_of(f): (section, f) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


def top_level_fields() -> list[dataclasses.Field]:
    """The documented top-level fields (method, reference, retrain settings), for the CLI and the app."""
    return [f for f in dataclasses.fields(RunConfig) if f.name in TOP_LEVEL and F.meta(f, "help")]


def as_forget_spec(forget: Any) -> ForgetSpec:
    """Accept a ForgetSpec, a class name/id, a list of them, or a dict of ForgetSpec fields."""
    if isinstance(forget, ForgetSpec):
        return forget
    if isinstance(forget, Mapping):
        try:
            return ForgetSpec(**forget)
        except TypeError as exc:
            raise UnlearnError(f"bad forget specification: {exc}") from None
    if isinstance(forget, (str, int)):
        return ForgetSpec(classes=(forget,))
    if isinstance(forget, (list, tuple)) and forget:
        return ForgetSpec(classes=tuple(forget))
    raise UnlearnError("forget must be a class name or id, a list of classes, a dict or a ForgetSpec")


__all__ = ["DataSource", "ForgetSpec", "ModelSource", "RunConfig", "RunOptions", "as_forget_spec",
           "config_keywords", "load_reference", "top_level_fields"]
