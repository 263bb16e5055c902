"""Cost curve: time per training epoch and peak memory as the dataset and the model grow.

A synthetic image dataset (random RGB images, 10 labels) of N rows is built,
decoded once through the model's processor into the uint8 cache (spilled to
a memory map above ``--memory-limit-mb``), then one epoch of plain retain
training (the FT step every method shares) runs through the engine. Printed
per row: decode seconds, epoch seconds, seconds per 1,000 images, peak
resident memory and peak heap (anonymous memory; mapped file pages are
reclaimable page cache and not counted there).

    python scripts/bench_scale.py                               # ResNet-18 at 32 px: 2k, 8k, 32k; ViT-B/16
    python scripts/bench_scale.py --sizes 5000 50000 500000 --vit-rows 2048   # on a GPU
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import device_name  # noqa: E402


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Peak:
    """Samples VmRSS and RssAnon every 20 ms; peaks relative to the start."""

    def __init__(self) -> None:
        self.base = {k: _status_mb(k) for k in ("VmRSS", "RssAnon")}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for k in self.peak:
                self.peak[k] = max(self.peak[k], _status_mb(k))
            time.sleep(0.02)

    def __enter__(self) -> Peak:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def synthetic(n: int, side: int, seed: int = 0):
    """N random RGB images of side × side with labels 0..9, as an on-disk Arrow dataset."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(seed)

    def rows():
        for i in range(n):
            yield {"image": Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)), "label": i % 10}

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)})
    return datasets.Dataset.from_generator(rows, features=feats, cache_dir=tempfile.mkdtemp(prefix="scale-"))


def model_and_processor(kind: str):
    from transformers import (
        ResNetConfig,
        ResNetForImageClassification,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    if kind == "resnet18":
        cfg = ResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                           layer_type="basic", num_labels=10)
        return ResNetForImageClassification(cfg), ViTImageProcessor(size={"height": 32, "width": 32}), 32
    cfg = ViTConfig(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, num_labels=10)
    return ViTForImageClassification(cfg), ViTImageProcessor(size={"height": 224, "width": 224}), 224


def measure(kind: str, n: int, batch: int, limit_mb: float, mixed_precision: str) -> dict:
    from hf_unlearn.data import Split, encode_images, is_mapped
    from hf_unlearn.engine import Engine, TrainSettings
    from hf_unlearn.methods.base import ce

    model, proc, side = model_and_processor(kind)
    ds = synthetic(n, 32 if kind == "resnet18" else 64)
    engine = Engine(mixed_precision if torch.cuda.is_available() else "no")
    with Peak() as peak:
        t0 = time.perf_counter()
        pixels, norm = encode_images(ds, "image", proc, 3, cache_dir=Path(tempfile.mkdtemp(prefix="scale-cache-")),
                                     memory_limit=int(limit_mb * 2**20))
        decode_s = time.perf_counter() - t0
        split = Split.of(pixels, torch.as_tensor(np.asarray(ds["label"]), dtype=torch.long))
        if not split.mapped:
            split = split.to(engine.device)
        settings = TrainSettings(epochs=1, lr=0.01, batch_size=batch, bn_policy="train")
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        engine.train(model, lambda m, b, _: ce(m, b["train"]), settings, norm, primary=("train", split))
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        epoch_s = time.perf_counter() - t1
    return {"model": kind, "rows": n, "side": side, "decoded_mb": pixels.numel() / 2**20, "mapped": is_mapped(pixels),
            "decode_s": decode_s, "epoch_s": epoch_s, "s_per_1k": 1000 * epoch_s / n,
            "peak_rss_mb": peak.peak["VmRSS"], "heap_growth_mb": peak.peak["RssAnon"] - peak.base["RssAnon"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 32000])
    ap.add_argument("--vit-rows", type=int, default=128, help="rows for the ViT-B/16 (224 px) row (0 = skip)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--memory-limit-mb", type=float, default=64.0, help="spill decoded sets above this size")
    ap.add_argument("--mixed-precision", default="bf16")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = [measure("resnet18", n, args.batch, args.memory_limit_mb, args.mixed_precision) for n in args.sizes]
    if args.vit_rows:
        rows.append(measure("vit-b16", args.vit_rows, min(args.batch, 32), args.memory_limit_mb,
                            args.mixed_precision))
    print(f"\n{device_name()}; one training epoch through the engine, batch {args.batch} (ViT: "
          f"{min(args.batch, 32)}), spill above {args.memory_limit_mb:g} MB; {(time.perf_counter() - t0) / 60:.1f} "
          "min in all\n")
    print("| model | input | rows | decoded (MB) | memory-mapped | decode (s) | epoch (s) | s per 1k rows "
          "| peak RSS (MB) | heap growth (MB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mapped = "yes" if r["mapped"] else "no"
        print(f"| {r['model']} | {r['side']} px | {r['rows']:,} | {r['decoded_mb']:.0f} | {mapped} "
              f"| {r['decode_s']:.1f} | {r['epoch_s']:.1f} | {r['s_per_1k']:.2f} | {r['peak_rss_mb']:.0f} "
              f"| {r['heap_growth_mb']:.0f} |")


if __name__ == "__main__":
    main()
