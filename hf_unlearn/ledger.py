"""The ledger of the deletion requests a model has served, so that the next request forgets their union.

A model that forgot one request in March gets the next in April. Unlearning the second alone would train on a
retain set that still holds the first request's rows (fine-tuning on it brings them back) and measure against
a Retrain that saw them. So every run writes ``unlearning_ledger.json`` beside its checkpoint: the dataset it
was measured on (commit, or a digest of the training split where there is none) and, per request, its kind,
description, method, the model it was applied to and **its rows**. A run on that checkpoint reads the ledger
(``--ledger PATH``, or the checkpoint folder's own) and forgets the union: D_f is every request's rows, D_r and
Retrain exclude them all, and the newest request's metrics are reported apart.

The rows may identify people: the ledger stays local unless the user pushes it on purpose, and nothing of it
but counts and digests (:meth:`Ledger.lineage`) enters the report or the model card. Rows are positions in one
version of the training split, so a ledger is refused, in one line, against any other version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnlearnError

LEDGER_FILE = "unlearning_ledger.json"
#: the ledger's layout
FORMAT = 1
#: a ledger larger than this is not read (a million row positions are about 8 MB)
MAX_BYTES = 64 << 20
#: ``ledger="none"``: ignore a ledger beside the model (start a new lineage from it)
NO_LEDGER = "none"


@dataclass
class Request:
    """One served deletion request: what was asked, by which method, on which model; and its rows (local)."""

    kind: str
    description: str
    rows: list[int]
    class_ids: list[int]
    forget_ids_sha256: str
    method: str
    #: the model the request was applied to (the first request's is the base) and the dataset it was served on
    model: dict[str, Any]
    dataset: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def public(self) -> dict[str, Any]:
        """What the report and the card may say of it: counts and a digest, never the rows."""
        record = {k: v for k, v in asdict(self).items() if k != "rows"}
        return {**record, "n_rows": len(self.rows)}


@dataclass
class Ledger:
    """The dataset the requests' rows index, and the requests in the order they were served."""

    dataset: dict[str, Any]
    requests: list[Request] = field(default_factory=list)
    format: int = FORMAT

    def rows(self) -> np.ndarray:
        """Every request's rows: what a new request must keep forgotten."""
        parts = [np.asarray(r.rows, dtype=np.int64) for r in self.requests]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    def class_ids(self) -> list[int]:
        """The classes earlier class-wise requests forgot (their test rows stay out of TA)."""
        return sorted({c for r in self.requests for c in r.class_ids})

    def lineage(self) -> list[dict[str, Any]]:
        return [r.public() for r in self.requests]

    def served(self, request: Request) -> Ledger:
        """The ledger after one more request."""
        return Ledger(dict(self.dataset), [*self.requests, request])

    def check_dataset(self, identity: dict[str, Any], where: str) -> None:
        """The rows are positions in one version of the training split: any other version is refused."""
        old, new = self.dataset, identity
        if old.get("train_split") != new.get("train_split") or old.get("n_train") != new.get("n_train"):
            raise UnlearnError(f"the ledger '{where}' indexes the '{old.get('train_split')}' split of "
                               f"{old.get('n_train')} rows, but this run's training split is '{new.get('train_split')}'"
                               f" of {new.get('n_train')} rows: use the dataset the earlier requests were served on")
        if old.get("commit") and new.get("commit") and old["commit"] != new["commit"]:
            raise UnlearnError(f"the ledger '{where}' was written against {old.get('id')} at commit "
                               f"{old['commit'][:12]}, but this run reads commit {new['commit'][:12]}: its rows are "
                               f"positions in that commit's training split; pass --dataset-revision {old['commit']}")
        if old.get("content") != new.get("content"):
            raise UnlearnError(f"the ledger '{where}' was written against another version of the training split "
                               "(its labels differ): its rows are positions in that version; use that version of "
                               "the dataset")

    def to_json(self) -> str:
        return json.dumps({"format": self.format, "dataset": self.dataset,
                           "requests": [asdict(r) for r in self.requests]})  # compact: rows are many

    def save(self, path: str | Path) -> Path:
        """Written whole or not at all."""
        from .output import write_text_atomically

        return write_text_atomically(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Ledger:
        """A ledger file, checked: one line of error for a missing, oversized or malformed one."""
        from .output import read_json_file

        p = Path(path)
        raw = read_json_file(p, MAX_BYTES, "ledger", f"an earlier run ({LEDGER_FILE})")
        try:
            if raw.get("format") != FORMAT:
                raise UnlearnError(f"'{p}' is a ledger of format {raw.get('format')}, not {FORMAT}")
            requests = [Request(**r) for r in raw["requests"]]
            if not all(isinstance(r.rows, list) and all(isinstance(i, int) and i >= 0 for i in r.rows)
                       for r in requests):
                raise UnlearnError(f"'{p}': a request's rows must be non-negative row positions")
            return cls(dict(raw["dataset"]), requests)
        except (AttributeError, KeyError, TypeError):
            raise UnlearnError(f"'{p}' is not an hf-unlearn ledger (its fields are not a ledger's)") from None


def content_digest(labels: np.ndarray) -> str:
    """A digest of the training split's labels and length: tells versions apart where there is no commit."""
    labels = np.ascontiguousarray(np.asarray(labels, dtype=np.int64))
    return hashlib.sha256(len(labels).to_bytes(8, "little") + labels.tobytes()).hexdigest()


def find(option: str | None, model_dir: str | None) -> Path | None:
    """The ledger a run reads: the one named, none (``"none"``), or the one beside a local model."""
    if option == NO_LEDGER:
        return None
    if option:
        return Path(option)
    beside = Path(model_dir) / LEDGER_FILE if model_dir else None
    return beside if beside is not None and beside.is_file() else None


#: the report files a checkpoint carries (``run --output`` writes report.json, a push unlearning_report.json)
REPORT_FILES = ("report.json", "unlearning_report.json")


def requests_served(model_id: str, local: bool, commit: str | None, token: str | None) -> int:
    """How many deletion requests a model's own report says it has served (its lineage), 0 for any other model:
    a model that served some must not be unlearned again without its ledger, or their rows come back."""
    from huggingface_hub import hf_hub_download

    for name in REPORT_FILES:
        try:
            path = Path(model_id) / name if local else Path(hf_hub_download(model_id, name, revision=commit,
                                                                           token=token))
            if not path.is_file() or path.stat().st_size > MAX_BYTES:
                continue
            lineage = json.loads(path.read_text()).get("lineage")
        except Exception:  # noqa: BLE001 - no report (or none readable): nothing says requests were served
            continue
        if isinstance(lineage, list):
            return len(lineage)
    return 0
