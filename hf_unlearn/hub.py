"""Loading models, image processors and datasets from a local path or the Hub.

All Hub traffic goes through ``huggingface_hub`` (directly or via transformers
and datasets). Each loader turns the clients' exceptions into one-line
:class:`UnlearnError` messages and records the commit it actually resolved, so
a report says exactly which weights and data were used.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import DataSource, ModelSource
from .errors import UnlearnError

logger = logging.getLogger(__name__)


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


def _valid_repo_id(source: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return True


def check_source(kind: str, source: str, what: str) -> bool:
    """True for an existing local path; raises for a missing path or a string that is no repo id.

    ``./x`` and ``/x`` are paths, so a missing one is reported as a missing
    path; anything else that the Hub would reject (spaces, ``//``, ``--``,
    more than one ``/``) is neither, and says so before any network call.
    """
    if _is_local(source):
        return True
    if source.startswith((".", "/", "~")) or source.endswith(".parquet") or os.sep != "/" and os.sep in source:
        raise UnlearnError(f"{kind} path '{source}' does not exist: give {what}")
    if not _valid_repo_id(source):
        raise UnlearnError(f"{kind} '{source}' is neither a local folder nor a valid Hub repo id "
                           "(namespace/name, letters, digits, '-', '_' and '.'): check the spelling")
    return False


TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)
TRANSIENT_NAMES = ("ConnectError", "ConnectionError", "ConnectTimeout", "ReadTimeout", "ReadError", "WriteError",
                   "RemoteProtocolError", "ProtocolError", "ChunkedEncodingError", "IncompleteRead", "TimeoutError",
                   "TimeoutException", "PoolTimeout")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 20:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    """A fault worth retrying: a 5xx / 429 / 408 answer, a dropped or timed-out connection.

    4xx answers (not found, bad token, gated) are answers, not faults, and
    an offline client stays offline, so neither is retried.
    """
    if hub_offline():
        return False
    for e in _chain(exc):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status is not None:
            return status in TRANSIENT_STATUS
        if type(e).__name__ in TRANSIENT_NAMES or isinstance(e, (ConnectionError, TimeoutError)):
            return True
        if "Server error '5" in str(e) or "Too Many Requests" in str(e):
            return True
    return False


def with_retries(fn: Any, what: str | None = None, source: str | None = None, retries: int | None = None,
                 backoff: float | None = None) -> Any:
    """Call ``fn`` again after transient Hub faults, waiting backoff, 2×backoff, … (capped at 30 s).

    Downloads resume: ``huggingface_hub`` keeps the partial ``.incomplete``
    file and asks the server only for the missing bytes on the next call.
    ``HF_UNLEARN_HUB_RETRIES`` (default 4) and ``HF_UNLEARN_HUB_BACKOFF``
    (seconds, default 1) tune it; each attempt's own wait is bounded by
    ``HF_HUB_DOWNLOAD_TIMEOUT`` / ``HF_HUB_ETAG_TIMEOUT``. When a fault
    outlasts every retry and ``what`` / ``source`` name the thing being
    loaded, it becomes one :class:`UnlearnError` line; other errors propagate.
    """
    retries = int(os.environ.get("HF_UNLEARN_HUB_RETRIES", "4")) if retries is None else retries
    backoff = float(os.environ.get("HF_UNLEARN_HUB_BACKOFF", "1")) if backoff is None else backoff
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below; the last one propagates
            if not is_transient(exc):
                raise
            if attempt == retries or not hub_reachable():  # an endpoint that is not there will not come back
                if what is None:
                    raise
                raise UnlearnError(unreachable_message(exc, what, source or "", attempt)) from exc
            if attempt == retries:
                if what is None:
                    raise
                raise UnlearnError(unreachable_message(exc, what, source or "", retries)) from exc
            logger.warning("transient Hub fault (%s); retry %d of %d in %.1f s", type(exc).__name__,
                           attempt + 1, retries, min(30.0, backoff * 2 ** attempt))
            time.sleep(min(30.0, backoff * 2 ** attempt))
    raise AssertionError("unreachable")


def unreachable_message(exc: BaseException, what: str, source: str, retries: int) -> str:
    """The one line for a fault that outlasted every retry (a timeout, a dropped connection, a 5xx)."""
    for e in _chain(exc):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status is not None:
            return f"the Hub failed while loading {what} '{source}' (HTTP {status}, {retries} retries): try again later"
        if "Timeout" in type(e).__name__ or isinstance(e, TimeoutError):
            return (f"the Hub timed out while loading {what} '{source}' ({retries} retries): check the network, "
                    "or raise HF_HUB_DOWNLOAD_TIMEOUT")
    return (f"could not reach the Hub to load {what} '{source}' ({retries} retries): check the network, "
            "or give a local path")


#: how long a reachability answer is trusted (a run asks several times; a user may come back online later)
REACHABLE_TTL_S = 30.0
_reachable: dict[str, tuple[float, bool]] = {}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint answers a TCP connection within ``timeout`` seconds.

    Offline, the clients' own retries (``huggingface_hub``'s five, inside this module's four) take over two
    minutes to give up on a name that cannot even be resolved; one connection attempt settles it in
    milliseconds. Behind a proxy the endpoint is not dialled directly, so the answer is "yes" and the clients
    decide. The probe runs in a thread because a hanging name lookup ignores socket timeouts.
    """
    import socket
    import threading
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    proxies = ("HTTPS_PROXY", "https_proxy") if url.scheme == "https" else ("HTTP_PROXY", "http_proxy")
    if any(os.environ.get(v) for v in (*proxies, "ALL_PROXY", "all_proxy")):
        return True
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    cached = _reachable.get(f"{host}:{port}")
    if cached is not None and time.monotonic() - cached[0] < REACHABLE_TTL_S:
        return cached[1]
    answer: list[bool] = []

    def dial() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    probe = threading.Thread(target=dial, daemon=True)
    probe.start()
    probe.join(timeout + 0.5)
    ok = bool(answer and answer[0])
    _reachable[f"{host}:{port}"] = (time.monotonic(), ok)
    return ok


def require_hub(what: str, source: str, cached: bool = False) -> None:
    """Refuse at once to load ``source`` from an unreachable Hub (unless it is in the local cache): one line
    that says so, instead of minutes of retries that end in the same place."""
    from huggingface_hub import constants

    if cached or hub_offline() or hub_reachable():
        return
    raise UnlearnError(f"{what} '{source}' is not a local path and the Hub ({constants.ENDPOINT}) cannot be reached "
                       "from here: give a local folder, run where the Hub is reachable, or set HF_HUB_OFFLINE=1 to "
                       "use what the Hub cache already holds")


def in_hub_cache(repo_id: str, filename: str, revision: str | None = None, repo_type: str = "model") -> bool:
    """Whether the Hub cache already holds ``filename`` of the repo (the clients then load it without the
    network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, filename, revision=revision, repo_type=repo_type), str)
    except Exception:  # noqa: BLE001 - an odd id or revision is the loader's to report
        return False


def model_in_cache(source: ModelSource) -> bool:
    return in_hub_cache(source.id, "config.json", source.revision)


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
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    return f"could not load {what} '{source}'{rev}: {first}"


def check_model_source(source: ModelSource) -> bool:
    """True for a local model folder; refuses a malformed id, or a Hub id the Hub cannot serve from here.

    A run checks its model before it downloads a dataset for it, so a wrong model id fails first and fast.
    """
    local = check_source("model", source.id, "a model directory or a Hub repo id")
    if not local:
        require_hub("model", source.id, cached=model_in_cache(source))
    return local


def load_model(source: ModelSource, *, token: str | None = None, num_labels: int | None = None,
               id2label: dict[int, str] | None = None, processor: bool = True,
               checked: bool = False) -> tuple[Any, Any, Resolved]:
    """Load an image classifier and its processor; optionally replace the head.

    ``num_labels``/``id2label`` re-initialise the classification head for a
    dataset whose classes differ (the user asked for it explicitly).
    ``processor=False``: the model alone (a pre-trained base whose inputs the run's own processor makes).
    ``checked``: the caller ran :func:`check_model_repo` already (a run checks the model before its dataset).
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    local = check_model_source(source)
    kwargs: dict[str, Any] = {"revision": source.revision, "token": token, "trust_remote_code": False}
    if num_labels is not None:
        kwargs.update(num_labels=num_labels, id2label=id2label,
                      label2id={v: k for k, v in (id2label or {}).items()}, ignore_mismatched_sizes=True)
    def fetch() -> tuple[Any, Any]:
        return (AutoModelForImageClassification.from_pretrained(source.id, **kwargs),
                AutoImageProcessor.from_pretrained(source.id, revision=source.revision, token=token,
                                                   trust_remote_code=False)
                if processor else None)

    try:
        if not checked:
            check_model_repo(source, local, token, processor)
        model, processor = fetch() if local else with_retries(fetch, "model", source.id)
    except UnlearnError:
        raise
    except pickle.UnpicklingError:
        raise UnlearnError(f"model '{source.id}': its pytorch_model.bin holds Python objects besides tensors (a pickle "
                           "that would run code when loaded), so it was refused unread: choose a model saved as "
                           "safetensors") from None
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
        direct = type(exc).__module__.startswith("huggingface_hub")  # from the repo checks, not wrapped by transformers
        raise UnlearnError(hub_error_message(exc if direct else exc.__cause__ or exc, "model", source.id,
                                             source.revision)) from exc
    except Exception as exc:  # noqa: BLE001 - every client error becomes one line
        raise UnlearnError(hub_error_message(exc, "model", source.id, source.revision)) from exc
    commit = None if local else _model_commit(source, token, model)
    return model, processor, Resolved(source.id, source.revision, commit, local)


def check_model_repo(source: ModelSource, local: bool, token: str | None, processor: bool = True) -> None:
    """What the model's repo holds, checked before transformers reads it (:mod:`hf_unlearn.repo_checks`): a
    local folder directly, a Hub repo through its file list and small files, a cached one offline in its
    snapshot."""
    from .repo_checks import check_hub_model, check_model_folder

    if local:
        check_model_folder(Path(source.id), source.id, processor)
    elif hub_offline() or not hub_reachable():
        from huggingface_hub import snapshot_download

        try:
            folder = snapshot_download(source.id, revision=source.revision, local_files_only=True)
        except Exception:  # noqa: BLE001 - not cached: the load itself says so in one line
            return
        check_model_folder(Path(folder), source.id, processor)
    else:
        try:
            check_hub_model(source.id, source.revision, token, processor)
        except UnlearnError:
            raise
        except Exception as exc:  # noqa: BLE001 - not found, gated, a bad token: one line, as a load would say
            raise UnlearnError(hub_error_message(exc, "model", source.id, source.revision)) from exc


def declared_base(source: ModelSource, local: bool, token: str | None = None, depth: int = 3) -> str | None:
    """The pre-trained checkpoint a model card names as ``base_model`` (the first of several), or None.

    An hf-unlearn card (tag ``machine-unlearning``) names the model that was unlearned, not the pre-trained
    base, so the search follows it to that model's own card (at most ``depth`` steps).
    """
    from huggingface_hub import ModelCard, hf_hub_download

    try:
        if local:
            path = Path(source.id) / "README.md"
            if not path.is_file():
                return None
        else:
            path = with_retries(lambda: hf_hub_download(source.id, "README.md", revision=source.revision,
                                                        token=token), "model card", source.id)
        data = ModelCard.load(path, ignore_metadata_errors=True).data
    except UnlearnError:
        raise
    except Exception:  # noqa: BLE001 - no card (or none readable) declares no base
        return None
    base = data.base_model[0] if isinstance(data.base_model, list) and data.base_model else data.base_model
    if not base:
        return None
    if "machine-unlearning" in (data.tags or []) and depth > 0:
        return declared_base(ModelSource(str(base)), check_source("model", str(base), "a model"), token, depth - 1)
    return str(base)


def _model_commit(source: ModelSource, token: str | None, model: Any) -> str | None:
    commit = getattr(model.config, "_commit_hash", None)
    if commit:
        return commit
    try:
        from huggingface_hub import HfApi

        return HfApi(token=token).model_info(source.id, revision=source.revision).sha
    except Exception:  # noqa: BLE001 - the commit is provenance, not a requirement
        return None


def materialise_streams(streams: Any) -> Any:
    """One pass over each streamed split into an on-disk Arrow table (memory-mapped, random access).

    Images travel as their encoded bytes (no decode and re-encode); the
    tables are written by ``datasets`` in bounded chunks under its cache.
    """
    import datasets

    out = {}
    for name, stream in streams.items():
        feats = stream.features
        if feats is not None:
            raw = datasets.Features({k: datasets.Image(decode=False) if isinstance(v, datasets.Image) else v
                                     for k, v in feats.items()})
            stream = stream.cast(raw)

        def rows(stream: Any = stream) -> Any:
            yield from stream

        table = datasets.Dataset.from_generator(rows, features=stream.features)
        if feats is not None:
            for col, feat in feats.items():
                if isinstance(feat, datasets.Image):
                    table = table.cast_column(col, feat)
        out[name] = table
    return datasets.DatasetDict(out)


def load_dataset_dict(source: DataSource, *, token: str | None = None) -> tuple[Any, Resolved]:
    """Load every split of a dataset as a ``DatasetDict``.

    Accepts a Hub dataset folder or repo id (config and revision honoured),
    a folder of parquet files, or a single ``.parquet`` path.
    """
    import datasets

    path = source.id
    local = check_source("dataset", path, "a dataset folder, parquet file or Hub id")
    from .repo_checks import check_dataset_files, check_local_dataset

    if local:
        check_local_dataset(path)
    else:
        require_hub("dataset", path, cached=in_hub_cache(path, "README.md", source.revision, "dataset"))
    try:
        if not local and not hub_offline() and hub_reachable():
            from huggingface_hub import HfApi

            info = with_retries(lambda: HfApi(token=token).dataset_info(path, revision=source.revision),
                                "dataset", path)
            check_dataset_files([s.rfilename for s in info.siblings or []], path)
        if local and path.endswith(".parquet"):
            dsd = datasets.load_dataset("parquet", data_files={source.train_split: path})
        elif local:
            dsd = datasets.load_dataset(path, name=source.config, revision=source.revision, token=token,
                                        streaming=source.streaming)
        else:
            dsd = with_retries(lambda: datasets.load_dataset(path, name=source.config, revision=source.revision,
                                                             token=token, streaming=source.streaming),
                               "dataset", path)
        if source.streaming:
            dsd = materialise_streams(dsd)
    except UnlearnError:
        raise
    except Exception as exc:  # noqa: BLE001
        empty = re.search(r'Instruction "([^"]+)" corresponds to no data', str(exc))
        if empty:
            raise UnlearnError(f"the '{empty.group(1)}' split of dataset '{path}' has 0 rows: "
                               "unlearning needs a non-empty training split") from None
        if local:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnlearnError(f"could not read dataset '{path}': {first}") from exc
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
