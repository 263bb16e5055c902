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


@dataclass(frozen=True)
class ModelSource:
    """A model: a local directory or a Hub repo id, at an optional revision."""

    id: str = doc(help="model directory or Hub repo id", keyword="model", app="sources",
                  label="Model (Hub id or local folder)")
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
                  label="Dataset (Hub id or folder)")
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
    mixed_precision: str = doc("no", "mixed precision of training and evaluation", choices=MIXED_PRECISION,
                               app="run", label="mixed precision")
    cpu: bool = doc(False, "run on the CPU even if a GPU is present")
    eval_batch_size: int = doc(256, "batch size of evaluation")
    cache_dir: str | None = doc(None, "where decoded tensors are cached")
    reinit_head: bool = doc(False, "new classification head for the dataset's labels")

    def __post_init__(self) -> None:
        F.check_choice(self.mixed_precision, _field(RunOptions, "mixed_precision"), "mixed_precision")
        if self.eval_batch_size <= 0:
            raise UnlearnError(f"eval_batch_size must be positive, got {self.eval_batch_size}")


def _field(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


#: the configuration's parts whose fields are flat keywords of ``unlearn(...)``, CLI flags and app inputs
SECTIONS: dict[str, type] = {"model": ModelSource, "data": DataSource, "options": RunOptions}


@dataclass(frozen=True)
class RunConfig:
    """One unlearning run: sources, request, method and settings, reference, execution options."""

    model: ModelSource
    data: DataSource
    forget: ForgetSpec
    method: str = doc("ft", "unlearning method (see `hf-unlearn methods`)", app="run", label="Method")
    #: the method's settings dataclass, checked (``get_method(method).settings(...)``)
    settings: Any = None
    options: RunOptions = field(default_factory=RunOptions)
    reference: Any = doc(None, "'retrain' to retrain on D_r for Avg.Gap, or a Retrain report.json")
    #: the Retrain recipe (checked settings of the ``retrain`` method) when ``reference == "retrain"``
    retrain_settings: Any = doc(None, "the Retrain recipe, KEY=VALUE settings of the retrain method",
                                flag="--retrain-set")

    @classmethod
    def from_keywords(cls, **keywords: Any) -> RunConfig:
        """A checked configuration from the flat keywords of ``unlearn(...)``; unknown names are method settings.

        ``model``, ``dataset`` and ``forget`` are required; ``forget`` takes anything
        :func:`as_forget_spec` takes. Every check of the configuration runs here, once.
        """
        from .methods import get_method

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
        method = get_method(top.get("method") or "ft")
        reference = top.get("reference")
        retrain = get_method("retrain").settings(top.get("retrain_settings")) if reference == "retrain" else None
        _check_reference(reference)
        return cls(model=built["model"], data=built["data"], forget=as_forget_spec(top["forget"]),
                   method=method.name, settings=method.settings(settings), options=built["options"],
                   reference=reference, retrain_settings=retrain)


#: ``RunConfig`` fields that are keywords themselves (the sections' fields are spread out)
TOP_LEVEL = ("forget", "method", "reference", "retrain_settings")


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


def _check_reference(reference: Any) -> None:
    from pathlib import Path

    from .report import UnlearnReport

    if reference is None or reference == "retrain" or isinstance(reference, (str, Path, UnlearnReport)):
        return
    raise UnlearnError("reference must be 'retrain', a report.json path or an UnlearnReport")


__all__ = ["DataSource", "ForgetSpec", "ModelSource", "RunConfig", "RunOptions", "as_forget_spec",
           "config_keywords", "top_level_fields"]
