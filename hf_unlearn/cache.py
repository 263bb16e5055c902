"""A bounded, crash-safe cache of folders on disk, keyed by a digest of what determines their content.

Retrain references are the expensive part of every measured run, and the
same request (model, data, forget rows, recipe, seed) comes back from the API,
the CLI, ``compare`` and every app session. Each entry is a folder written
whole into a temporary name and renamed into place, so a crash or a full disk
leaves no half-written entry under its key; each holds a manifest of its files
with their sizes and SHA-256, so an entry that was altered or cut short is
rebuilt, never trusted; and the total size stays under ``HF_UNLEARN_CACHE_MB``
(default 4096) by evicting the least recently used entries. Entries hold no
pickles: JSON, NumPy arrays (loaded with ``allow_pickle=False``) and safetensors.

The limit covers a family: every cache whose root sits in the same folder (the
Retrain references, the decoded tensors and the demo's assets under the
hf-unlearn cache) shares it, and eviction takes the least recently used entry of
any of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UnlearnError

MANIFEST = "manifest.json"
#: marks a folder as a cache root, so that its siblings count it in their shared limit
MARKER = ".hf-unlearn-cache"
DEFAULT_LIMIT_MB = 4096.0


#: a temporary folder older than this belongs to a process that died while writing it
STALE_TMP_S = 3600.0


def limit_bytes() -> int:
    """The cache's size limit (``HF_UNLEARN_CACHE_MB``, default 4096 MB); a one-line error when it is not one."""
    raw = os.environ.get("HF_UNLEARN_CACHE_MB", str(DEFAULT_LIMIT_MB))
    try:
        mb = float(raw)
    except ValueError:
        mb = float("nan")
    if not mb >= 0:
        raise UnlearnError(f"HF_UNLEARN_CACHE_MB must be a size in megabytes (e.g. 4096), got '{raw}'")
    return int(mb * 2**20)


def digest(key: Any) -> str:
    """A stable name for a key made of JSON-able parts."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FolderCache:
    """Entries under ``root/<digest>``: :meth:`get` a valid one, or :meth:`put` a new one written by a function."""

    def __init__(self, root: Path, checksums: bool = True) -> None:
        self.root = Path(root)
        #: check every file's SHA-256 on each read (sizes only without: multi-GB decoded tensors, which are written
        #: by a rename too and read with formats that check their own headers)
        self.checksums = checksums

    def check_limit(self) -> int:
        """The size limit, read now (a bad ``HF_UNLEARN_CACHE_MB`` fails before any work, not after it)."""
        return limit_bytes()

    def path(self, key: Any) -> Path:
        return self.root / digest(key)

    def get(self, key: Any) -> Path | None:
        """The entry's folder if it exists and every file matches its manifest (else it is removed); marks it used."""
        entry = self.path(key)
        if not entry.is_dir():
            return None
        if not self._valid(entry, key):
            shutil.rmtree(entry, ignore_errors=True)
            return None
        try:
            os.utime(entry / MANIFEST)  # the LRU clock
        except OSError:  # evicted by another process since the check
            return None
        return entry

    def put(self, key: Any, write: Callable[[Path], None]) -> Path:
        """Write an entry with ``write(folder)``, atomically, then keep the cache within its size limit."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / MARKER).touch()
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            write(tmp)
            files = {p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size,
                                                     "sha256": _sha256(p) if self.checksums else None}
                     for p in sorted(tmp.rglob("*")) if p.is_file()}
            (tmp / MANIFEST).write_text(json.dumps({"key": json.loads(json.dumps(key, default=str)),
                                                    "files": files, "written": time.time()}))
            entry = self.path(key)
            if entry.exists():
                shutil.rmtree(entry, ignore_errors=True)
            try:
                tmp.rename(entry)
            except OSError:
                # another process wrote the same key between the removal and the rename: keep its entry
                shutil.rmtree(tmp, ignore_errors=True)
                if not self._valid(entry, key):
                    raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.evict(keep=entry)
        return entry

    def _valid(self, entry: Path, key: Any) -> bool:
        try:
            manifest = json.loads((entry / MANIFEST).read_text())
            if manifest.get("key") != json.loads(json.dumps(key, default=str)):
                return False
            for name, meta in manifest["files"].items():
                path = entry / name
                if not path.is_file() or path.stat().st_size != meta["bytes"]:
                    return False
                if self.checksums and _sha256(path) != meta["sha256"]:
                    return False
            return True
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, folder) of every entry, least recently used first; temporary folders left by a
        process that died while writing are removed here (they count as nothing once an hour old)."""
        out = []
        if not self.root.is_dir():
            return out
        now = time.time()
        for entry in self.root.iterdir():
            try:
                if entry.name.startswith(".tmp-"):
                    if now - entry.stat().st_mtime > STALE_TMP_S:
                        shutil.rmtree(entry, ignore_errors=True)
                    continue
                if not entry.is_dir():
                    continue
                size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
                stamp = (entry / MANIFEST).stat().st_mtime if (entry / MANIFEST).exists() else 0.0
            except FileNotFoundError:  # removed by another process meanwhile
                continue
            out.append((stamp, size, entry))
        return sorted(out)

    def family(self) -> list[FolderCache]:
        """This cache and every other cache root beside it: they share one size limit."""
        siblings = []
        try:
            siblings = [FolderCache(p) for p in self.root.parent.iterdir()
                        if p != self.root and (p / MARKER).exists()]
        except OSError:
            pass
        return [self, *siblings]

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove the least recently used entries of the family until it fits its limit (``keep`` stays)."""
        entries = sorted(e for cache in self.family() for e in cache.entries())
        total, limit, removed = sum(size for _, size, _ in entries), limit_bytes(), []
        for _, size, entry in entries:
            if total <= limit:
                break
            if entry == keep:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            total -= size
            removed.append(entry)
        return removed
