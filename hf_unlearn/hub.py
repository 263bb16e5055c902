"""Loading models, image processors and datasets from a local path or the Hub.

All Hub traffic goes through ``huggingface_hub`` (directly or via transformers
and datasets). Each loader turns the clients' exceptions into one-line
:class:`UnlearnError` messages and records the commit it actually resolved, so
a report says exactly which weights and data were used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import DataSource, ModelSource
from .errors import UnlearnError


@dataclass(frozen=True)
class Resolved:
    """Where something came from: id, requested revision and resolved commit."""

    id: str
    revision: str | None
    commit: str | None
    local: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "revision": self.revision, "commit": self.commit, "local": self.local}


def _is_local(path: str) -> bool:
    return os.path.exists(path)


def _looks_like_path(source: str) -> bool:
    """A string that cannot be a Hub id (``ns/name`` or ``name``) is a local path."""
    return (
        source.startswith((".", "/", "~"))
        or source.count("/") > 1
        or os.sep != "/" and os.sep in source
        or source.endswith(".parquet")
    )


def hub_offline() -> bool:
    """Whether the Hub clients were told to stay offline (``HF_HUB_OFFLINE``)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_error_message(exc: BaseException, what: str, source: str, revision: str | None) -> str:
    """Translate a huggingface_hub / requests exception into a user sentence."""
    from huggingface_hub import errors as hf_errors

    name = type(exc).__name__
    rev = f" at revision '{revision}'" if revision else ""
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return f"{what} '{source}' has no revision '{revision}': check the branch, tag or commit name"
    if isinstance(exc, hf_errors.GatedRepoError):
        return f"{what} '{source}' is gated: accept its terms on the Hub and pass a token with read access"
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return (
            f"{what} '{source}' was not found locally or on the Hub{rev}: check the id, "
            "or pass a token if it is private"
        )
    if isinstance(exc, hf_errors.OfflineModeIsEnabled) or "offline" in str(exc).lower() or (
            isinstance(exc, hf_errors.LocalEntryNotFoundError) and hub_offline()):
        return (
            f"{what} '{source}' is not a local path and the Hub is offline (HF_HUB_OFFLINE=1 or no network): "
            "give a local path or go online"
        )
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        return (
            f"could not reach the Hub to load {what} '{source}' and it is not in the local cache: "
            "check the network, or give a local path"
        )
    if isinstance(exc, hf_errors.EntryNotFoundError):
        return f"{what} '{source}'{rev} is missing a file it needs ({exc}): is it the right repo?"
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            return f"the Hub rejected the token while loading {what} '{source}': check HF_TOKEN"
        return f"the Hub failed while loading {what} '{source}'{rev} (HTTP {status}): try again later"
    if name in ("ConnectError", "ConnectionError", "ConnectTimeout", "ReadTimeout", "LocalEntryNotFoundError"):
        return (
            f"could not reach the Hub to load {what} '{source}': check the network, "
            "or give a local path"
        )
    return f"could not load {what} '{source}'{rev}: {exc}"


def load_model(source: ModelSource, *, token: str | None = None, num_labels: int | None = None,
               id2label: dict[int, str] | None = None) -> tuple[Any, Any, Resolved]:
    """Load an image classifier and its processor; optionally replace the head.

    ``num_labels``/``id2label`` re-initialise the classification head for a
    dataset whose classes differ (the user asked for it explicitly).
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    local = _is_local(source.id)
    if not local and _looks_like_path(source.id):
        raise UnlearnError(f"model path '{source.id}' does not exist: give a model directory or a Hub repo id")
    kwargs: dict[str, Any] = {"revision": source.revision, "token": token}
    if num_labels is not None:
        kwargs.update(num_labels=num_labels, id2label=id2label,
                      label2id={v: k for k, v in (id2label or {}).items()}, ignore_mismatched_sizes=True)
    try:
        model = AutoModelForImageClassification.from_pretrained(source.id, **kwargs)
        processor = AutoImageProcessor.from_pretrained(source.id, revision=source.revision, token=token)
    except UnlearnError:
        raise
    except ValueError as exc:
        if "Unrecognized" in str(exc) or "image classification" in str(exc).lower():
            raise UnlearnError(
                f"'{source.id}' is not an image-classification model transformers can load: "
                "choose a model with an image-classification head"
            ) from exc
        raise UnlearnError(hub_error_message(exc, "model", source.id, source.revision)) from exc
    except OSError as exc:
        if local:
            raise UnlearnError(
                f"'{source.id}' is not a model directory (no config.json / weights / preprocessor_config.json): "
                "save one with save_pretrained"
            ) from exc
        raise UnlearnError(hub_error_message(exc.__cause__ or exc, "model", source.id, source.revision)) from exc
    except Exception as exc:  # noqa: BLE001 - every client error becomes one line
        raise UnlearnError(hub_error_message(exc, "model", source.id, source.revision)) from exc
    commit = None if local else _model_commit(source, token, model)
    return model, processor, Resolved(source.id, source.revision, commit, local)


def _model_commit(source: ModelSource, token: str | None, model: Any) -> str | None:
    commit = getattr(model.config, "_commit_hash", None)
    if commit:
        return commit
    try:
        from huggingface_hub import HfApi

        return HfApi(token=token).model_info(source.id, revision=source.revision).sha
    except Exception:  # noqa: BLE001 - the commit is provenance, not a requirement
        return None


def load_dataset_dict(source: DataSource, *, token: str | None = None) -> tuple[Any, Resolved]:
    """Load every split of a dataset as a ``DatasetDict``.

    Accepts a Hub dataset folder or repo id (config and revision honoured),
    a folder of parquet files, or a single ``.parquet`` path.
    """
    import datasets

    path = source.id
    local = _is_local(path)
    if not local and _looks_like_path(path):
        raise UnlearnError(f"dataset path '{path}' does not exist: give a dataset folder, parquet file or Hub id")
    try:
        if local and path.endswith(".parquet"):
            dsd = datasets.load_dataset("parquet", data_files={source.train_split: path})
        else:
            dsd = datasets.load_dataset(path, name=source.config, revision=source.revision, token=token)
    except UnlearnError:
        raise
    except Exception as exc:  # noqa: BLE001
        if local:
            raise UnlearnError(f"could not read dataset '{path}': {exc}") from exc
        cause = exc
        while cause.__cause__ is not None and not type(cause).__module__.startswith("huggingface_hub"):
            cause = cause.__cause__
        if type(exc).__name__ == "DatasetNotFoundError":
            msg = (f"dataset '{path}' was not found locally or on the Hub: check the id, "
                   "or pass a token if it is private")
            if "offline" in str(exc).lower() or os.environ.get("HF_HUB_OFFLINE") == "1":
                msg = hub_error_message(RuntimeError("offline"), "dataset", path, source.revision)
            raise UnlearnError(msg) from exc
        raise UnlearnError(hub_error_message(cause, "dataset", path, source.revision)) from exc
    if not isinstance(dsd, datasets.DatasetDict):
        dsd = datasets.DatasetDict({source.train_split: dsd})
    commit = None
    if not local:
        try:
            from huggingface_hub import HfApi

            commit = HfApi(token=token).dataset_info(path, revision=source.revision).sha
        except Exception:  # noqa: BLE001 - provenance only
            commit = None
    return dsd, Resolved(path, source.revision, commit, local)


def default_cache_dir() -> Path:
    """Where decoded tensors and the demo model live (``HF_UNLEARN_CACHE`` overrides)."""
    env = os.environ.get("HF_UNLEARN_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(base) / "hf_unlearn"
