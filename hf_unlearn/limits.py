"""What one job may cost, and what one input file may be: the limits a public Space needs.

A Space serves strangers. One visitor's million-row dataset, 5000-epoch run or 60,000 × 60,000 PNG must not
hold the only run slot for hours or exhaust the machine, so every limit here is checked *before* the work it
bounds: rows before decoding, decoded bytes before the first image is decoded, pixels from an image's header.

Each limit is an environment variable (``0`` or ``none`` lifts it). Unset, a process on a Space (the app, or
anything else run there) gets :data:`SPACE_DEFAULTS`; the app, CLI and Python API on a user's own machine get
:data:`LOCAL_DEFAULTS`, which leave the job's cost to its owner but keep the per-image guards, because a
decompression bomb is as hostile on a laptop as on a Space.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .errors import UnlearnError


@dataclass(frozen=True)
class Limits:
    """None: no limit."""

    #: rows per split (train, test)
    max_rows: int | None
    #: the decoded tensors of both splits together, in MB
    max_decoded_mb: float | None
    #: wall time of one job (a run, a comparison, an audit, a tuning), from its start, not its wait in the queue
    max_job_seconds: float | None
    #: pixels of one image, read from its header before it is decoded
    max_image_pixels: int | None
    #: frames of one image (an animated GIF, a multi-page TIFF): only still images are classified
    max_image_frames: int | None
    #: classes a label column may declare (integer labels 0..max: a label of 10⁹ would make 10⁹ class names)
    max_classes: int | None


#: environment variable of each limit
ENV = {
    "max_rows": "HF_UNLEARN_MAX_ROWS",
    "max_decoded_mb": "HF_UNLEARN_MAX_DECODED_MB",
    "max_job_seconds": "HF_UNLEARN_MAX_JOB_SECONDS",
    "max_image_pixels": "HF_UNLEARN_MAX_IMAGE_PIXELS",
    "max_image_frames": "HF_UNLEARN_MAX_IMAGE_FRAMES",
    "max_classes": "HF_UNLEARN_MAX_CLASSES",
}

#: a public Space: CIFAR-10/100 and MNIST fit whole (60,000 rows a split), so do their ViT presets at 224 px
#: (60,000 × 3 × 224² bytes is 8.6 GB, spilled to a memory map above 8 GB), and a job gets half an hour
SPACE_DEFAULTS = Limits(max_rows=60_000, max_decoded_mb=10_240.0, max_job_seconds=1800.0,
                        max_image_pixels=100_000_000, max_image_frames=1, max_classes=1000)
#: a user's own machine: the job's size is the owner's business; the per-image and per-label guards stay
LOCAL_DEFAULTS = Limits(max_rows=None, max_decoded_mb=None, max_job_seconds=None,
                        max_image_pixels=100_000_000, max_image_frames=1, max_classes=100_000)

def on_space() -> bool:
    """Whether this process runs on a Hugging Face Space (which sets these variables)."""
    return os.environ.get("SYSTEM") == "spaces" or bool(os.environ.get("SPACE_ID"))


def current() -> Limits:
    """The limits in force here and now: each variable that is set, else the defaults of where this runs."""
    defaults = SPACE_DEFAULTS if on_space() else LOCAL_DEFAULTS
    values = {}
    for name, var in ENV.items():
        raw = os.environ.get(var)
        if raw is None or raw.strip() == "":
            values[name] = getattr(defaults, name)
            continue
        if raw.strip().lower() in ("0", "none", "off"):
            values[name] = None
            continue
        try:
            number = float(raw)
        except ValueError:
            number = float("nan")
        if not number > 0:
            raise UnlearnError(f"{var} must be a positive number (or 0 / none for no limit), got '{raw}'")
        kind = {f.name: f.type for f in dataclasses.fields(Limits)}[name]
        values[name] = int(number) if kind.startswith("int") else number
    return Limits(**values)


def check_rows(split: str, rows: int) -> None:
    """A split longer than the limit is refused before a single image of it is decoded."""
    limit = current().max_rows
    if limit is not None and rows > limit:
        raise UnlearnError(f"the '{split}' split has {rows:,} rows, more than the {limit:,} a job may use here "
                           f"({ENV['max_rows']}): take a subset of the dataset, or run hf-unlearn on your own "
                           "machine")


def check_decoded(total_bytes: int, detail: str) -> None:
    """The decoded tensors a job would hold, refused before decoding when they exceed the limit."""
    limit = current().max_decoded_mb
    if limit is not None and total_bytes > limit * 2**20:
        raise UnlearnError(f"decoding this dataset would take {total_bytes / 2**20:,.1f} MB ({detail}), more than "
                           f"the {limit:,.1f} MB a job may use here ({ENV['max_decoded_mb']}): take a subset, use a "
                           "model with a smaller input size, or run hf-unlearn on your own machine")


def check_classes(count: int, column: str) -> None:
    limit = current().max_classes
    if limit is not None and count > limit:
        raise UnlearnError(f"label column '{column}' declares {count:,} classes, more than the {limit:,} allowed "
                           f"({ENV['max_classes']}): labels must be class ids 0..C-1 (or class names)")


def time_limit_message(seconds: float) -> str:
    return (f"the job ran for more than {seconds:,.0f} s, the limit per job here ({ENV['max_job_seconds']}), and "
            "was stopped; nothing was kept: ask for fewer epochs or a smaller dataset, or run hf-unlearn on your "
            "own machine")
