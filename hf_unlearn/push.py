"""Pushing an unlearned checkpoint to the Hub in one atomic commit.

The folder is assembled locally first (weights, config, image-processor
config, ``unlearning_report.json``, model card), then sent with a single
``upload_folder`` call: the Hub applies a commit whole or not at all, so a
failure leaves the remote repo as it was. Every Hub error becomes one line
that never contains the token.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UnlearnError
from .report import UnlearnReport

CHECKPOINT_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "processor_config.json",
                    "unlearning_mask.safetensors", "per_class.png", "mia.png",
                    # an audited checkpoint's evidence (hf-unlearn audit): anyone can recompute its score
                    "audit.json", "audit.md", "audit_confidences.npz", "epsilon_hist.png")


@dataclass(frozen=True)
class PushInfo:
    repo_url: str
    commit_url: str
    commit_oid: str | None
    pr_url: str | None


def push_to_hub(result: Any, repo_id: str, *, token: str | None = None, private: bool | None = None,
                create_pr: bool = False, branch: str | None = None, commit_message: str | None = None,
                push_ledger: bool = False) -> PushInfo:
    """Push an :class:`~hf_unlearn.api.UnlearnResult` or a saved output folder to ``repo_id``.

    The ledger of served requests (their rows, which may identify people) stays local unless ``push_ledger``.
    """
    from huggingface_hub import HfApi

    _check_repo_id(repo_id)
    report = result.report if hasattr(result, "report") else UnlearnReport.load(Path(result))
    base = report.sources.get("model", {})
    if not create_pr and not base.get("local") and base.get("id") == repo_id:
        raise UnlearnError(f"refusing to overwrite the base model '{repo_id}' with its unlearned version: "
                           "push to another repo, or pass create_pr=True (--create-pr) to open a pull request")
    api = HfApi(token=token)
    staging = Path(tempfile.mkdtemp(prefix="hf-unlearn-push-"))
    try:
        _stage(result, report, staging, repo_id, push_ledger)
        message = commit_message or f"Unlearn {report.forget.get('description')} with {report.method} (hf-unlearn)"
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True)
            if branch:
                api.create_branch(repo_id, branch=branch, exist_ok=True)
            info = api.upload_folder(folder_path=str(staging), repo_id=repo_id, revision=branch,
                                     create_pr=create_pr, commit_message=message)
        except UnlearnError:
            raise
        except Exception as exc:  # noqa: BLE001 - every client error becomes one line
            raise UnlearnError(push_error_message(exc, repo_id, token)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PushInfo(str(url), str(info.commit_url), getattr(info, "oid", None), getattr(info, "pr_url", None))


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise UnlearnError(f"'{repo_id}' is not a valid repo id: use 'namespace/name' "
                           "(letters, digits, '-', '_', '.')") from None
    if "/" not in repo_id:
        raise UnlearnError(f"give the namespace of the target repo: 'your-name/{repo_id}'")


def _stage(result: Any, report: UnlearnReport, staging: Path, repo_id: str, push_ledger: bool = False) -> None:
    from .card import build_model_card
    from .ledger import LEDGER_FILE
    from .output import write_files

    if hasattr(result, "model"):
        result.model.save_pretrained(staging)
        if result.processor is not None:
            result.processor.save_pretrained(staging)
        mask = getattr(result, "artifacts", {}).get("mask")
        if mask is not None:
            mask.save(staging / "unlearning_mask.safetensors")
        files = result.extra_files() if hasattr(result, "extra_files") else {}
        write_files(staging, {k: v for k, v in files.items() if k != LEDGER_FILE or push_ledger})
    else:
        src = Path(result)
        if not (src / "config.json").exists():
            raise UnlearnError(f"'{src}' is not an hf-unlearn output folder (no config.json): "
                               "give the --output folder of `hf-unlearn run`")
        for name in (*CHECKPOINT_FILES, *((LEDGER_FILE,) if push_ledger else ())):
            if (src / name).exists():
                shutil.copy2(src / name, staging / name)
    (staging / "unlearning_report.json").write_text(report.to_json())
    build_model_card(report, repo_id).save(staging / "README.md")


def push_error_message(exc: BaseException, repo_id: str, token: str | None) -> str:
    """A one-line reason for a failed push; the token never appears in it."""
    from huggingface_hub import errors as hf_errors

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        msg = "the Hub is offline (HF_HUB_OFFLINE=1): unset it to push; the checkpoint is kept locally"
    elif status == 401:
        msg = (f"the Hub rejected the token while pushing to '{repo_id}' (401): pass a valid write token "
               "(--token or HF_TOKEN)" if token or _env_token() else
               f"pushing to '{repo_id}' needs a Hub token with write access: pass --token or set HF_TOKEN")
    elif status == 403:
        msg = (f"your token cannot write to '{repo_id}' (403): use a write token, "
               "and a namespace you own or belong to")
    elif isinstance(exc, hf_errors.RevisionNotFoundError):
        msg = f"the branch of '{repo_id}' does not exist: check --branch"
    elif status is not None and status >= 500:
        msg = (f"the Hub failed while pushing to '{repo_id}' (HTTP {status}); nothing was committed, "
               "try again")
    elif type(exc).__name__ in ("ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError",
                                "ReadError", "WriteError", "ConnectionError"):
        msg = f"the connection to the Hub failed while pushing to '{repo_id}'; nothing was committed, try again"
    else:
        msg = f"pushing to '{repo_id}' failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if token:
        msg = msg.replace(token, "***")
    return msg


def _env_token() -> str | None:
    import os

    return os.environ.get("HF_TOKEN")
