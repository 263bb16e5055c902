"""Writing a run's checkpoint atomically: all of it or nothing.

Everything goes to a hidden temporary directory beside the target and is
renamed into place only when complete, so Ctrl-C, a cancelled job or a full
disk never leave a half-written checkpoint that looks usable.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import UnlearnError


def check_output_dir(path: str | Path, overwrite: bool = False) -> Path:
    """An output folder that may be written: new, empty, or ``overwrite``; else the one-line error (checked
    before any work, so a run never ends in a refusal to write its result)."""
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise UnlearnError(f"output directory '{path}' already exists and is not empty: "
                           "choose another or pass --overwrite")
    return target


def write_text_atomically(path: str | Path, text: str) -> Path:
    """One file written whole or not at all (a temporary file beside it, renamed into place)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain write would leave it (mkstemp makes it private)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_json_file(path: str | Path, max_bytes: int, what: str, written_by: str) -> Any:
    """A small JSON file a user hands over (a settings file, a ledger): one line of error for a missing, oversized
    or malformed one, before anything parses a byte more than the limit."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnlearnError(f"'{path.name}' is {size} bytes, over the {max_bytes} a {what} may have: give the "
                               f"file {written_by} wrote")
        return json.loads(path.read_text())
    except OSError as exc:
        raise UnlearnError(f"cannot read the {what} '{path}': {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UnlearnError(f"'{path.name}' is not JSON: give the file {written_by} wrote") from None


def write_files(folder: Path, files: dict[str, str | bytes]) -> None:
    """Files by name, as text or bytes (an audit's JSON, its npz and its figure)."""
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content)


#: the caption of the membership-inference histograms in a saved report
MIA_CAPTION = "Confidence on forget, retain and test rows (what a membership-inference attack sees)"


def save_checkpoint(output_dir: str | Path, model: Any, processor: Any, report: Any,
                    overwrite: bool = False, mask: Any = None,
                    extra_files: dict[str, str | bytes] | None = None) -> Path:
    """``save_pretrained`` model and processor, plus report.json / report.md / per_class.png
    (and ``unlearning_mask.safetensors`` for masked methods, and any ``extra_files`` name → text or bytes)."""
    target = Path(output_dir).resolve()
    check_output_dir(target, overwrite)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    except OSError as exc:
        raise UnlearnError(f"cannot write to '{parent}' ({exc.strerror}): choose a writable output directory") from None
    try:
        model.save_pretrained(tmp)
        if processor is not None:
            processor.save_pretrained(tmp)
        if report is not None:
            (tmp / "report.json").write_text(report.to_json())
            report.plot_per_class(tmp / "per_class.png")
            images = {"Per-class test accuracy": "per_class.png",
                      **({MIA_CAPTION: "mia.png"} if "mia.png" in (extra_files or {}) else {})}
            (tmp / "report.md").write_text(report.document(images) + "\n")
        write_files(tmp, extra_files or {})
        if mask is not None:
            mask.save(tmp / "unlearning_mask.safetensors")
        if target.exists():
            old = parent / f".{target.name}.old-{os.getpid()}"
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UnlearnError(
                f"could not save to '{output_dir}' ({exc.strerror or exc}): nothing was written") from None
        raise
    return target


def zip_folder(folder: str | Path, target: str | Path) -> Path:
    """``folder`` as a zip at ``target`` whose entries sit under the folder's name (unzipped, it is a folder
    ``from_pretrained`` loads). Written to a temporary name beside ``target`` and renamed, so ``target`` is
    either the whole archive or absent. Stored, not compressed: weights do not compress, and time matters."""
    import zipfile

    folder, target = Path(folder), Path(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UnlearnError(f"could not write the archive '{target.name}' ({exc.strerror or exc}): nothing was "
                               "written") from None
        raise
    return target
