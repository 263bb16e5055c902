"""From a dataset and a forget specification to cached tensors.

Images are decoded and run through the model's own image processor once
(resize / crop only), stored as ``uint8`` and normalised on the fly, so epochs
never re-decode JPEGs and a 50k-image CIFAR-10 split costs 150 MB, not 600 MB.
The forget, retain and test sets are index views of those tensors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cancel import raise_if_cancelled
from .config import DataSource
from .errors import UnlearnError
from .forget import ForgetSpec, TestRule, TrainingSplit, select_forget

logger = logging.getLogger(__name__)

IMAGE_COLUMN_NAMES = ("image", "img", "images", "pixel_values", "picture", "photo")
LABEL_COLUMN_NAMES = ("label", "labels", "fine_label", "class", "target", "category", "coarse_label")


# ---------------------------------------------------------------- columns


def detect_columns(ds: Any, image_column: str | None, label_column: str | None) -> tuple[str, str]:
    """Find the image and label columns, or check the ones the user named."""
    from datasets import ClassLabel, Image

    names = list(ds.column_names)
    feats = ds.features
    if image_column is not None:
        if image_column not in names:
            raise UnlearnError(f"image column '{image_column}' not in the dataset; its columns are: {', '.join(names)}")
        img = image_column
    else:
        typed = [c for c in names if isinstance(feats[c], Image)]
        named = [c for c in names if c.lower() in IMAGE_COLUMN_NAMES]
        if not typed and not named:
            raise UnlearnError(
                f"the dataset has no image column (columns: {', '.join(names)}): "
                "pass --image-column if one holds images"
            )
        img = (typed or named)[0]
    if not isinstance(feats[img], Image) and not _holds_images(feats[img]):
        raise UnlearnError(f"column '{img}' does not hold images (its type is {_type_name(feats[img])}): "
                           "pass --image-column with the column that does")
    if label_column is not None:
        if label_column not in names:
            raise UnlearnError(f"label column '{label_column}' not in the dataset; its columns are: {', '.join(names)}")
        lbl = label_column
    else:
        typed = [c for c in names if isinstance(feats[c], ClassLabel) and c != img]
        named = [c for n in LABEL_COLUMN_NAMES for c in names if c.lower() == n and c != img]
        if not typed and not named:
            raise UnlearnError(
                f"no label column found (columns: {', '.join(names)}): pass --label-column"
            )
        lbl = (typed or named)[0]
    return img, lbl


def _holds_images(feature: Any) -> bool:
    """Undeclared image columns: encoded {bytes, path} structs or nested pixel arrays may be images."""
    from datasets import Value

    return not isinstance(feature, Value)


def _type_name(feature: Any) -> str:
    return getattr(feature, "dtype", None) or type(feature).__name__


def class_names_and_labels(ds: Any, label_column: str) -> tuple[list[str], np.ndarray]:
    """Class names (from a ``ClassLabel`` when there is one) and integer labels."""
    from datasets import ClassLabel

    from .limits import check_classes

    feat = ds.features[label_column]
    if isinstance(feat, ClassLabel):
        check_classes(len(feat.names), label_column)
    if isinstance(feat, ClassLabel) and hasattr(ds, "data"):
        column = ds.data.column(label_column)  # Arrow, no Python objects: 50k labels in milliseconds
        if hasattr(ds, "_indices") and ds._indices is not None:
            column = column.take(ds._indices.column(0))
        if column.null_count == 0:
            return list(feat.names), column.to_numpy(zero_copy_only=False).astype(np.int64)
    raw = ds[label_column]
    missing = [i for i, v in enumerate(raw) if v is None]
    if missing:
        rows = ", ".join(str(i) for i in missing[:5]) + (", …" if len(missing) > 5 else "")
        raise UnlearnError(f"label column '{label_column}' has {len(missing)} missing values (rows {rows}): "
                           "drop or fill those rows first")
    if isinstance(feat, ClassLabel):
        return list(feat.names), np.asarray(raw, dtype=np.int64)
    if all(isinstance(v, (int, np.integer)) for v in raw):
        labels = np.asarray(raw, dtype=np.int64)
        if labels.min() < 0:
            raise UnlearnError(f"label column '{label_column}' has negative labels: labels must be 0..C-1")
        check_classes(int(labels.max()) + 1, label_column)  # before a name is made for each id up to the largest
        return [str(i) for i in range(int(labels.max()) + 1)], labels
    if all(isinstance(v, str) for v in raw):
        names = sorted(set(raw))
        check_classes(len(names), label_column)
        index = {n: i for i, n in enumerate(names)}
        return names, np.asarray([index[v] for v in raw], dtype=np.int64)
    raise UnlearnError(f"label column '{label_column}' must hold integers or strings")


def labels_in(ds: Any, label_column: str, class_names: list[str]) -> np.ndarray:
    """Labels of another split in the training split's id space."""
    names, labels = class_names_and_labels(ds, label_column)
    if names == class_names:
        return labels
    index = {n: i for i, n in enumerate(class_names)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise UnlearnError(f"the test split has classes the training split lacks: {', '.join(unknown[:5])}")
    return np.asarray([index[names[i]] for i in labels], dtype=np.int64)


def check_model_labels(model_config: Any, class_names: list[str]) -> None:
    """The model's head must predict the dataset's classes, in the same order."""
    n_model = int(model_config.num_labels)
    if n_model != len(class_names):
        raise UnlearnError(
            f"the model predicts {n_model} classes but the dataset has {len(class_names)}: "
            "choose the matching model, or pass --reinit-head to train a new head"
        )
    id2label = {int(k): str(v) for k, v in (model_config.id2label or {}).items()}
    generic = all(v == f"LABEL_{k}" for k, v in id2label.items())
    if id2label and not generic:
        model_names = [id2label.get(i, "") for i in range(n_model)]
        if [n.lower() for n in model_names] != [n.lower() for n in class_names]:
            raise UnlearnError(
                f"the model's labels ({', '.join(model_names[:4])}, ...) differ from the dataset's "
                f"({', '.join(class_names[:4])}, ...): choose the matching model, or pass --reinit-head"
            )


# ---------------------------------------------------------------- tensors


class PixelNormalizer:
    """The processor's rescale + normalise, applied to cached uint8 batches on any device."""

    def __init__(self, rescale: float | None, mean: list[float] | None, std: list[float] | None) -> None:
        self.rescale = rescale
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self._on: dict[torch.device, tuple[torch.Tensor | None, torch.Tensor | None]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(x · rescale − mean) / std as one multiply-add, x · (rescale / std) − mean / std: two passes, not four."""
        x = x.float()
        if self.mean is None:
            return x * self.rescale if self.rescale is not None else x
        if x.device not in self._on:
            scale = (self.rescale if self.rescale is not None else 1.0) / self.std
            self._on[x.device] = (scale.to(x.device), (self.mean / self.std).to(x.device))
        scale, shift = self._on[x.device]
        return torch.addcmul(-shift, x, scale)

    @classmethod
    def identity(cls) -> PixelNormalizer:
        return cls(None, None, None)

    @classmethod
    def from_processor(cls, processor: Any) -> PixelNormalizer:
        rescale = float(processor.rescale_factor) if getattr(processor, "do_rescale", False) else None
        if getattr(processor, "do_normalize", False):
            mean, std = list(processor.image_mean), list(processor.image_std)
        else:
            mean = std = None
        return cls(rescale, mean, std)


#: the image formats decoded; others (EPS and PDF, which Pillow hands to Ghostscript; PSD; ICNS; …) are refused
#: before a decoder sees them
SAFE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM", "TGA")
#: leading bytes of formats people upload that are refused, named so that the message says what was sent
REFUSED_SIGNATURES = {b"%!PS": "PostScript (EPS)", b"\xc5\xd0\xd3\xc6": "PostScript (EPS)", b"%PDF": "PDF",
                      b"<svg": "SVG", b"<?xml": "SVG/XML", b"8BPS": "Photoshop (PSD)", b"icns": "ICNS",
                      b"\x00\x00\x00\x0cjP": "JPEG 2000"}
#: pixel modes that are not 8-bit: converting them to L or RGB clips or wraps their values silently
WIDE_MODES = ("I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;32", "I;32B", "F;32BF")


def _open_image(v: dict, where: str) -> Any:
    """Open (not decode) an encoded image value, refusing what a hostile file looks like before any decoding."""
    import io

    from PIL import Image

    if v.get("bytes") is not None:
        data = v["bytes"]
        if len(data) == 0:
            raise UnlearnError(f"{where}: the image is empty (0 bytes): remove or replace that row")
        head = bytes(data[:16]).lstrip()
        for magic, name in REFUSED_SIGNATURES.items():
            if head.startswith(magic):
                raise UnlearnError(f"{where}: the image is {name}, a format hf-unlearn does not decode (it takes "
                                   f"{', '.join(SAFE_FORMATS)}): convert that row")
        return Image.open(io.BytesIO(data), formats=SAFE_FORMATS)
    if v.get("path"):
        path = v["path"]
        if not os.path.isfile(path):  # a device (/dev/zero), a FIFO or a folder never reaches a decoder
            raise UnlearnError(f"{where}: the image path '{path}' is not a regular file: remove or replace that row")
        return Image.open(path, formats=SAFE_FORMATS)
    raise UnlearnError(f"{where}: the image is missing: remove or replace that row")


def _check_image(img: Any, where: str) -> None:
    """Refuse from the header alone: too many pixels (a decompression bomb), frames, or a non-8-bit mode."""
    from .limits import ENV, current

    limits = current()
    pixels = img.size[0] * img.size[1]
    if limits.max_image_pixels is not None and pixels > limits.max_image_pixels:
        raise UnlearnError(f"{where}: the image is {img.size[0]:,} × {img.size[1]:,} pixels, more than the "
                           f"{limits.max_image_pixels:,} allowed ({ENV['max_image_pixels']}): downscale that row")
    if limits.max_image_frames is not None and getattr(img, "is_animated", False):
        frames = getattr(img, "n_frames", 2) if limits.max_image_frames > 1 else 2
        if frames > limits.max_image_frames:
            raise UnlearnError(f"{where}: the image has several frames (an animation or a multi-page file), and "
                               "only still images are classified: keep one frame of that row")
    if img.mode in WIDE_MODES:
        raise UnlearnError(f"{where}: the image has {img.mode} pixels (16-bit or floating point), which 8-bit "
                           "models cannot take without rescaling: convert that column to 8-bit images")


def _to_image(v: Any, mode: str, where: str) -> Any:
    """A PIL image in ``mode``; an undecodable value names its row (``where``) instead of a traceback."""
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(v, dict) and ("bytes" in v or "path" in v):
            v = _open_image(v, where)
            _check_image(v, where)
        if isinstance(v, np.ndarray):
            v = Image.fromarray(v)
        if not hasattr(v, "convert"):
            raise UnlearnError(f"{where}: the value is not an image ({type(v).__name__})")
        if isinstance(v, Image.Image) and v.mode in WIDE_MODES:
            _check_image(v, where)
        return v.convert(mode)
    except Image.DecompressionBombError:
        from .limits import ENV

        raise UnlearnError(f"{where}: the image declares more pixels than Pillow will decode (a decompression "
                           f"bomb; the limit is {ENV['max_image_pixels']}): downscale that row") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnlearnError(f"{where}: the image cannot be decoded ({type(exc).__name__}): "
                           "remove or replace that row") from None


DEFAULT_MEMORY_LIMIT_MB = 8192.0


def memory_limit_bytes() -> int:
    """Decoded sets larger than this are spilled to a memory-mapped file (``HF_UNLEARN_MEMORY_LIMIT_MB``)."""
    return int(float(os.environ.get("HF_UNLEARN_MEMORY_LIMIT_MB", DEFAULT_MEMORY_LIMIT_MB)) * 2**20)


def encode_images(ds: Any, image_column: str, processor: Any, num_channels: int,
                  cache_dir: Path | None = None, batch_size: int = 256,
                  split_name: str = "train", memory_limit: int | None = None) -> tuple[torch.Tensor, PixelNormalizer]:
    """Decode and resize every image once; returns (N, C, H, W) uint8 and its normaliser.

    The processor is called with rescale and normalise switched off so that
    the cache stays uint8; a processor that cannot do that gets a float cache
    with its full preprocessing applied (identity normaliser).

    ``cache_dir`` is a :class:`~hf_unlearn.cache.FolderCache` of decoded sets: each entry is a NumPy array
    (read with ``allow_pickle=False``) and a JSON normaliser, written whole and renamed into place, evicted
    least recently used first. An entry is opened as a copy-on-write memory map, so reading a 2.9 GB CIFAR-10
    cache costs nothing until a batch (or the move to the device) touches its pages.

    Above ``memory_limit`` bytes (default :func:`memory_limit_bytes`) the pixels are written chunk by chunk
    into the entry's array and returned as a memory map (``is_mapped`` is true of it): only the chunk being
    decoded and the pages a batch touches are ever in memory.
    """
    from .cache import FolderCache

    limit = memory_limit_bytes() if memory_limit is None else memory_limit
    key = {"decoded": _cache_key(ds, image_column, processor, num_channels)}
    cache = FolderCache(cache_dir, checksums=False) if cache_dir is not None else None
    entry = cache.get(key) if cache is not None else None
    if entry is not None:
        try:
            return _open_entry(entry)
        except (OSError, ValueError, KeyError) as exc:  # unreadable (or holding a pickle): decoded again
            logger.warning("the decoded-tensor cache entry %s could not be read (%s): decoding again", entry, exc)
    decoded: dict[str, Any] = {}

    def write(folder: Path) -> None:
        decoded["value"] = _decode(ds, image_column, processor, num_channels, folder, batch_size, split_name, limit)

    if cache is not None:
        entry = cache.put(key, write)
        pixels, normalizer, spilled = decoded["value"]
        return _open_entry(entry) if spilled else (pixels, normalizer)
    folder = Path(tempfile.mkdtemp(prefix="hf-unlearn-map-"))  # kept only when the set spills into it
    pixels, normalizer, spilled = _decode(ds, image_column, processor, num_channels, folder, batch_size, split_name,
                                          limit, save=False)
    if spilled:
        return _open_entry(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return pixels, normalizer


def _decode(ds: Any, image_column: str, processor: Any, num_channels: int, folder: Path, batch_size: int,
            split_name: str, limit: int, save: bool = True) -> tuple[torch.Tensor | None, PixelNormalizer, bool]:
    """Decode into ``folder`` (``pixels.npy`` and ``normalizer.json``; the array only when it spills or
    ``save``): (the pixels, unless they spilled to the file; the normaliser; whether they spilled)."""
    from datasets import Image as ImageFeature

    mode = "L" if num_channels == 1 else "RGB"
    chunks: list[torch.Tensor] = []
    raw_uint8 = True
    spill: np.memmap | None = None
    if isinstance(ds.features.get(image_column), ImageFeature):
        ds = ds.cast_column(image_column, ImageFeature(decode=False))  # decode here, where a bad row can be named
    for start in range(0, len(ds), batch_size):
        raise_if_cancelled()  # decoding a large set takes minutes: a cancelled run stops between chunks
        rows = ds[start:start + batch_size][image_column]
        images = [_to_image(v, mode, f"row {start + i} of the {split_name} split") for i, v in enumerate(rows)]
        if raw_uint8:
            try:
                px = processor(images, do_rescale=False, do_normalize=False, return_tensors="pt")["pixel_values"]
                if px.dtype != torch.uint8:
                    px = px.round().clamp(0, 255).to(torch.uint8)
            except (TypeError, ValueError):
                if chunks or spill is not None:
                    raise
                raw_uint8 = False
            else:
                if spill is None and not chunks and len(ds) * px[0].numel() > limit:
                    spill = np.lib.format.open_memmap(folder / PIXELS, mode="w+", dtype=np.uint8,
                                                      shape=(len(ds), *px.shape[1:]))
                if spill is not None:
                    spill[start:start + len(px)] = px.numpy()
                else:
                    chunks.append(px)
                continue
        chunks.append(processor(images, return_tensors="pt")["pixel_values"].float())
    normalizer = PixelNormalizer.from_processor(processor) if raw_uint8 else PixelNormalizer.identity()
    mean, std = (None if t is None else t.flatten().tolist() for t in (normalizer.mean, normalizer.std))
    pixels = None
    if spill is not None:
        spill.flush()
        del spill
    else:
        pixels = torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.uint8)
        if save:
            np.save(folder / PIXELS, pixels.numpy(), allow_pickle=False)
    (folder / NORMALIZER).write_text(json.dumps({"rescale": normalizer.rescale, "mean": mean, "std": std,
                                                 "mapped": pixels is None}))
    return pixels, normalizer, pixels is None


PIXELS, NORMALIZER = "pixels.npy", "normalizer.json"


_MAPPED: dict[int, weakref.ref] = {}  # id → tensor: identity, since tensors compare element-wise


def is_mapped(pixels: torch.Tensor) -> bool:
    """Whether a pixel tensor is a memory map of a spilled cache (read by batch, never moved whole)."""
    ref = _MAPPED.get(id(pixels))
    return ref is not None and ref() is pixels


def _open_entry(folder: Path) -> tuple[torch.Tensor, PixelNormalizer]:
    """A decoded set from its cache entry, without pickle: a copy-on-write map of the array (writable for torch,
    never written back); registered as mapped when it spilled (its batches are then read from disk)."""
    meta = json.loads((folder / NORMALIZER).read_text())
    arr = np.load(folder / PIXELS, mmap_mode="c", allow_pickle=False)
    pixels = torch.from_numpy(arr)
    if meta.get("mapped"):
        key = id(pixels)
        _MAPPED[key] = weakref.ref(pixels, lambda _ref: _MAPPED.pop(key, None))  # forgotten with the tensor
    return pixels, PixelNormalizer(meta["rescale"], meta["mean"], meta["std"])


def check_decoded_size(splits: list[Any], image_column: str, processor: Any, num_channels: int) -> None:
    """What decoding would hold (rows × the processor's output of the first image, uint8), against the limit."""
    from .limits import check_decoded, current

    rows = sum(len(ds) for ds in splits)
    if current().max_decoded_mb is None or rows == 0:
        return
    from datasets import Image as ImageFeature

    first = splits[0]
    if isinstance(first.features.get(image_column), ImageFeature):
        first = first.cast_column(image_column, ImageFeature(decode=False))
    image = _to_image(first[0][image_column], "L" if num_channels == 1 else "RGB", "row 0 of the training split")
    try:
        shape = processor([image], do_rescale=False, do_normalize=False, return_tensors="pt")["pixel_values"].shape
    except (TypeError, ValueError):
        shape = processor([image], return_tensors="pt")["pixel_values"].shape
    per_image = int(np.prod(shape[1:]))
    check_decoded(rows * per_image, f"{rows:,} images of {' × '.join(map(str, shape[1:]))} bytes")


def _cache_key(ds: Any, image_column: str, processor: Any, num_channels: int) -> str:
    fingerprint = getattr(ds, "_fingerprint", None) or str(len(ds))
    proc = processor.to_json_string() if hasattr(processor, "to_json_string") else repr(processor)
    blob = json.dumps([fingerprint, image_column, proc, num_channels, 1], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


# ---------------------------------------------------------------- the splits a method sees


@dataclass
class Split:
    """Images (uint8 or float, N×C×H×W) and int64 labels of one set.

    ``rows`` is set when ``images`` is a memory-mapped cache shared by every
    split: the split is then the list of its row ids, subsets stay lists,
    and pixels are read from disk one batch at a time (:meth:`pixels`).
    """

    images: torch.Tensor
    labels: torch.Tensor
    rows: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def mapped(self) -> bool:
        return self.rows is not None

    def pixels(self, index: slice | int | torch.Tensor | np.ndarray) -> torch.Tensor:
        """The images at positions ``index`` of this split (a gather from the map for a mapped split)."""
        if self.rows is None:
            return self.images[index]
        return self.images[self.rows[index]]

    def subset(self, idx: np.ndarray | torch.Tensor) -> Split:
        if self.rows is not None:
            idx = torch.as_tensor(idx, dtype=torch.long)
            return Split(self.images, self.labels[idx], self.rows[idx])
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.images.device)
        return Split(self.images[idx], self.labels[idx])

    def to(self, device: torch.device | str) -> Split:
        """The split on ``device`` (tensors already there are not copied; a mapped split stays on disk)."""
        if self.rows is not None:
            return self
        return Split(self.images.to(device, non_blocking=True), self.labels.to(device))

    @classmethod
    def of(cls, pixels: torch.Tensor, labels: torch.Tensor) -> Split:
        """A whole decoded set: a row list over a memory map, the tensor itself otherwise."""
        if is_mapped(pixels):
            return cls(pixels, labels, torch.arange(len(labels)))
        return cls(pixels, labels)


@dataclass
class UnlearnData:
    """Everything a method and the metrics need, as tensors; no Hub, no UI.

    ``retain_train`` is what methods train on (a subsample when
    ``retain_fraction`` < 1); ``retain`` is the whole ``D_r`` for RA and MIA.
    ``test`` follows the forget kind's test rule (remaining classes for class-wise
    forgetting); ``test_forget`` holds the test rows it reports apart (the forgotten
    classes'); ``test_rows`` / ``test_forget_rows`` are their positions in ``test_all``.
    """

    forget: Split
    retain: Split
    retain_train: Split
    test: Split
    test_all: Split
    test_forget: Split | None
    test_rows: np.ndarray
    test_forget_rows: np.ndarray | None
    class_names: list[str]
    forget_rows: np.ndarray
    forget_class_ids: list[int]
    normalizer: PixelNormalizer
    #: with requests served before (a ledger): the newest request's positions in ``forget`` (its own metrics)
    #: and the classes it alone forgets (``forget_class_ids`` are every request's)
    request_rows: np.ndarray | None = None
    request_class_ids: list[int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to(self, device: torch.device | str) -> UnlearnData:
        """Every split on ``device``, moved once (uint8, so a CIFAR-sized set is a few hundred MB).

        Methods then draw batches without host-to-device copies; D_r and the
        retain subset the methods train on stay one tensor when they are the same rows.
        """
        retain = self.retain.to(device)
        same = self.retain_train is self.retain
        test_all = self.test_all.to(device)
        return dataclasses.replace(
            self, forget=self.forget.to(device), retain=retain,
            retain_train=retain if same else self.retain_train.to(device),
            test=test_all.subset(self.test_rows), test_all=test_all,
            test_forget=None if self.test_forget is None else self.test_forget.to(device))

    @property
    def train(self) -> Split:
        """The whole training split ``D`` (forget first, then retain), for training originals."""
        labels = torch.cat([self.forget.labels, self.retain.labels])
        if self.forget.mapped:
            return Split(self.forget.images, labels, torch.cat([self.forget.rows, self.retain.rows]))
        return Split(torch.cat([self.forget.images, self.retain.images]), labels)


@dataclass
class LabelledSplits:
    """The training and test splits of a dataset, decoded, with their columns and class names."""

    train_ds: Any
    test_ds: Any
    test_split: str
    image_column: str
    label_column: str
    class_names: list[str]
    train_labels: np.ndarray
    test_labels: np.ndarray
    train_split: str = "train"

    def tensors(self, processor: Any, num_channels: int,
                cache_dir: Path | None = None) -> tuple[Split, Split, PixelNormalizer]:
        """Both splits as cached tensors (decoded once, reused across runs via ``cache_dir``), refused first when
        they would exceed the job's decoded-bytes limit (:mod:`hf_unlearn.limits`)."""
        check_decoded_size([self.train_ds, self.test_ds], self.image_column, processor, num_channels)
        train_px, normalizer = encode_images(self.train_ds, self.image_column, processor, num_channels, cache_dir,
                                             split_name=self.train_split)
        test_px, _ = encode_images(self.test_ds, self.image_column, processor, num_channels, cache_dir,
                                   split_name=self.test_split)
        return (Split.of(train_px, torch.from_numpy(self.train_labels)),
                Split.of(test_px, torch.from_numpy(self.test_labels)), normalizer)

    def identity(self, processor: Any, num_channels: int) -> dict[str, Any]:
        """What the two splits' tensors are made of (the tensor cache's keys: content fingerprint, column,
        processor and channels), for keys of results computed from them (the Retrain reference cache)."""
        return {"train": [self.train_split, _cache_key(self.train_ds, self.image_column, processor, num_channels)],
                "test": [self.test_split, _cache_key(self.test_ds, self.image_column, processor, num_channels)],
                "label_column": self.label_column, "class_names": list(self.class_names)}

    def training(self) -> TrainingSplit:
        """The training split as a forget kind selects from it."""
        return TrainingSplit(self.train_ds, self.train_labels, self.class_names)

    def build(self, spec: ForgetSpec, processor: Any, num_channels: int, cache_dir: Path | None = None,
              earlier: Any = None) -> tuple[UnlearnData, dict[str, Any]]:
        """Forget selection, then the tensor caches, for one run (a bad request fails before any decoding).

        ``earlier``: the :class:`~hf_unlearn.ledger.Ledger` of the requests the model already served; D_f is
        then their union with this one's rows."""
        request = forget_rows = select_forget(spec, self.training())
        if earlier is not None and earlier.requests:
            forget_rows = union_with(request, earlier.rows(), len(self.train_labels), spec)
        train, test_all, normalizer = self.tensors(processor, num_channels, cache_dir)
        return split_data(self, train, test_all, normalizer, spec, forget_rows=forget_rows, earlier=earlier,
                          request=request)


def union_with(rows: np.ndarray, earlier: np.ndarray, n_train: int, spec: ForgetSpec) -> np.ndarray:
    """This request's rows and every earlier request's: still a proper subset of the training split."""
    if len(earlier) and int(earlier.max()) >= n_train:
        raise UnlearnError(f"the ledger lists row {int(earlier.max())}, but the training split has rows "
                           f"0..{n_train - 1}: the ledger is for another dataset")
    union = np.union1d(rows, earlier).astype(np.int64)
    if len(union) >= n_train:
        raise UnlearnError(f"{spec.describe()} and the requests already served cover the whole training split: "
                           "nothing would be retained")
    return union


def with_classes(rule: TestRule, class_ids: list[int], test_labels: np.ndarray) -> TestRule:
    """A test rule that also keeps ``class_ids`` (forgotten by earlier requests) out of TA and reports them apart."""
    extra = [c for c in class_ids if c not in rule.forget_class_ids]
    if not extra:
        return rule
    gone = np.isin(test_labels, extra)
    rows = np.asarray([r for r in rule.rows if not gone[r]], dtype=np.int64)
    forget_rows = np.union1d(np.asarray(rule.forget_rows, dtype=np.int64), np.flatnonzero(gone)).astype(np.int64)
    return TestRule(rows, forget_rows, sorted({*rule.forget_class_ids, *extra}))


def labelled_splits(dsd: Any, source: DataSource) -> LabelledSplits:
    """Pick the train and test splits, detect the columns, and read the labels of both."""
    if source.train_split not in dsd:
        raise UnlearnError(
            f"the dataset has no '{source.train_split}' split (it has: {', '.join(dsd.keys())}): pass --train-split"
        )
    test_split = source.test_split
    if test_split is None:
        test_split = next((s for s in ("test", "validation", "valid", "val") if s in dsd), None)
        if test_split is None:
            raise UnlearnError(
                f"the dataset has no test split (it has: {', '.join(dsd.keys())}): pass --test-split"
            )
    elif test_split not in dsd:
        raise UnlearnError(f"the dataset has no '{test_split}' split (it has: {', '.join(dsd.keys())})")
    train_ds, test_ds = dsd[source.train_split], dsd[test_split]
    from .limits import check_rows

    check_rows(source.train_split, len(train_ds))
    check_rows(test_split, len(test_ds))
    if len(train_ds) < 2:
        raise UnlearnError(f"the training split has {len(train_ds)} rows: unlearning needs at least two")
    img_col, lbl_col = detect_columns(train_ds, source.image_column, source.label_column)
    class_names, train_labels = class_names_and_labels(train_ds, lbl_col)
    if img_col not in test_ds.column_names or lbl_col not in test_ds.column_names:
        raise UnlearnError(f"the test split lacks the '{img_col}' or '{lbl_col}' column")
    test_labels = labels_in(test_ds, lbl_col, class_names)
    return LabelledSplits(train_ds, test_ds, test_split, img_col, lbl_col, class_names, train_labels, test_labels,
                          source.train_split)


def build_data(dsd: Any, source: DataSource, spec: ForgetSpec, processor: Any, num_channels: int,
               cache_dir: Path | None = None) -> tuple[UnlearnData, dict[str, Any]]:
    """Splits, labels, forget selection and tensor caches for one run, from a ``DatasetDict``."""
    return labelled_splits(dsd, source).build(spec, processor, num_channels, cache_dir)


def split_data(ls: LabelledSplits, train: Split, test_all: Split, normalizer: PixelNormalizer, spec: ForgetSpec,
               forget_rows: np.ndarray | None = None, earlier: Any = None,
               request: np.ndarray | None = None) -> tuple[UnlearnData, dict[str, Any]]:
    """Forget / retain / test views of already decoded tensors (on any device).

    ``earlier`` (a ledger of requests served before) with ``request`` (this request's own rows, inside
    ``forget_rows``, their union): the test rule also leaves out the classes forgotten earlier, and the data
    records where this request's rows sit in the forget split.

    Benchmarks that run many forget requests on one dataset decode once and
    call this per request; :meth:`LabelledSplits.build` is the one-request path.
    The test rows follow the forget kind's rule (the remaining classes for class-wise forgetting).
    """
    class_names, train_labels, test_labels = ls.class_names, ls.train_labels, ls.test_labels
    if forget_rows is None:
        request = forget_rows = select_forget(spec, ls.training())
        if earlier is not None and earlier.requests:
            forget_rows = union_with(request, earlier.rows(), len(train_labels), spec)

    retain_mask = np.ones(len(train_labels), dtype=bool)
    retain_mask[forget_rows] = False
    retain_rows = np.flatnonzero(retain_mask)
    retain_train_rows = None
    if spec.retain_fraction < 1.0:
        rng = np.random.default_rng(spec.seed + 1)
        k = max(1, int(round(spec.retain_fraction * len(retain_rows))))
        retain_train_rows = np.sort(rng.choice(retain_rows, size=k, replace=False))

    rule = spec.the_kind.test_split(spec.fields, test_labels, class_names)
    request_rows, request_class_ids = None, None
    if earlier is not None and earlier.requests:  # classes forgotten earlier stay out of TA too
        request_class_ids = list(rule.forget_class_ids)
        rule = with_classes(rule, earlier.class_ids(), test_labels)
        own = request if request is not None else select_forget(spec, ls.training())
        request_rows = np.searchsorted(forget_rows, own)
    test_rows, forget_class_ids = rule.rows, list(rule.forget_class_ids)
    test_forget_rows = np.asarray(rule.forget_rows, dtype=np.int64) if len(rule.forget_rows) else None
    test_forget = None if test_forget_rows is None else test_all.subset(test_forget_rows)
    test = test_all.subset(test_rows)
    retain = train.subset(retain_rows)
    data = UnlearnData(
        forget=train.subset(forget_rows),
        retain=retain,
        retain_train=retain if retain_train_rows is None else train.subset(retain_train_rows),
        test=test,
        test_all=test_all,
        test_forget=test_forget,
        test_rows=test_rows,
        test_forget_rows=test_forget_rows,
        class_names=class_names,
        forget_rows=forget_rows,
        forget_class_ids=forget_class_ids,
        normalizer=normalizer,
        request_rows=request_rows,
        request_class_ids=request_class_ids,
    )
    info = {
        "image_column": ls.image_column,
        "label_column": ls.label_column,
        "train_split": ls.train_split,
        "test_split": ls.test_split,
        "n_train": len(train_labels),
        "n_forget": len(forget_rows),
        "n_retain": len(retain_rows),
        "n_retain_train": len(data.retain_train),
        "n_test": len(test),
        "n_test_forget": 0 if test_forget is None else len(test_forget),
    }
    if request_rows is not None:
        info["requests"] = len(earlier.requests) + 1
        info["n_forget_request"] = len(request_rows)
    if spec.the_kind.matches is not None:  # a value list: how many values were asked for, how many matched nothing
        info["forget_values"] = spec.the_kind.matches(spec.fields, ls.training())
    return data, info
