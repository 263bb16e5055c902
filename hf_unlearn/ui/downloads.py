"""What a finished run offers to download: the unlearned checkpoint as one zip, and its report as Markdown (with
its plots) and JSON.

Everything is written by :meth:`hf_unlearn.api.UnlearnResult.save` into a fresh folder first (so what the page
shows is what the zip holds), then zipped to a temporary name and renamed: a download never sees a half-written
archive, and a failed run leaves nothing behind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..output import zip_folder

#: the report files offered beside the zip, in the order the page lists them
REPORT_FILES = ("report.md", "report.json", "per_class.png", "mia.png")


def archive_name(report: Any) -> str:
    """"hf-unlearn-rbm-class-3": the method and the request, as a file name."""
    def slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")

    request = slug(str(report.forget.get("description") or "request"))[:40]
    return f"hf-unlearn-{slug(str(report.method)) or 'method'}-{request}".lower()


def run_downloads(result: Any, folder: Path) -> tuple[Path, list[str]]:
    """Save ``result`` under ``folder`` and zip it: (the checkpoint folder, the files to offer: zip first)."""
    checkpoint = result.save(folder / archive_name(result.report))
    archive = zip_folder(checkpoint, folder / f"{checkpoint.name}.zip")
    return checkpoint, [str(archive), *(str(checkpoint / n) for n in REPORT_FILES if (checkpoint / n).exists())]
