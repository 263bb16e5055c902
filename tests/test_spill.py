"""Decoded sets above the memory limit spill to a memory-mapped file and stream from it, batch by batch."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch
from conftest import random_images

from hf_unlearn import unlearn
from hf_unlearn.data import Split, encode_images, is_mapped

ANON_BOUND_MB = 200  # heap growth allowed while a 562 MB set is decoded into a map and read once (batches of 64):
#                      a decode chunk of 256 images and a few batches, independent of the set's size


def _rss_anon_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def test_a_spilled_cache_gives_the_same_run_as_an_in_memory_one(demo_assets, tmp_path, monkeypatch):
    common = {"method": "ft", "epochs": 1, "seed": 0}
    eager = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", cache_dir=tmp_path / "eager", **common)
    monkeypatch.setenv("HF_UNLEARN_MEMORY_LIMIT_MB", "0.01")  # below the digits' 350 KB
    spilled = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", cache_dir=tmp_path / "mapped", **common)
    assert spilled.data.forget.mapped and spilled.data.retain.mapped and not eager.data.forget.mapped
    entries = [json.loads(p.read_text()) for p in (tmp_path / "mapped").glob("*/normalizer.json")]
    assert entries and all(e["mapped"] for e in entries) and not list((tmp_path / "mapped").rglob("*.pt"))
    for k in ("ua", "ra", "ta", "mia_efficacy"):
        assert spilled.report.metrics["unlearned"][k] == eager.report.metrics["unlearned"][k], k
    again = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", cache_dir=tmp_path / "mapped", **common)
    assert again.data.forget.mapped  # reopened from the map, not decoded again
    assert again.report.metrics["unlearned"]["ta"] == spilled.report.metrics["unlearned"]["ta"]


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux /proc for RssAnon")
def test_peak_heap_stays_bounded_while_a_large_set_spills(tmp_path):
    from transformers import ViTImageProcessor

    from hf_unlearn.data import PixelNormalizer
    from hf_unlearn.engine import Engine

    n = 12000
    ds = random_images(n, 32).flatten_indices()
    proc = ViTImageProcessor(size={"height": 128, "width": 128})  # decoded: 12000 × 3 × 128 × 128 = 562 MB
    base = _rss_anon_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_anon_mb())
            time.sleep(0.01)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        pixels, norm = encode_images(ds, "image", proc, 3, cache_dir=tmp_path, memory_limit=16 * 2**20)
        split = Split.of(pixels, torch.zeros(n, dtype=torch.long))
        seen = 0
        for x, _ in Engine(cpu=True).batches(split, 64, norm, shuffle=True, generator=torch.Generator()):
            seen += len(x)
    finally:
        done.set()
        t.join()
    assert is_mapped(pixels) and split.mapped and seen == n
    assert isinstance(norm, PixelNormalizer)
    growth = peak[0] - base
    print(f"heap growth {growth:.1f} MB while decoding and reading {pixels.numel() / 2**20:.0f} MB")
    assert growth < ANON_BOUND_MB, growth


@pytest.mark.parametrize("method", ["rbm", "salun", "minnorm-og", "retrain"])
def test_every_kind_of_method_runs_on_a_spilled_cache(demo_assets, tmp_path, monkeypatch, method):
    """Masks (saliency over a row list), MinNorm-OG's sampled rows and Retrain's D_r all read from the map."""
    monkeypatch.setenv("HF_UNLEARN_MEMORY_LIMIT_MB", "0.01")
    res = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method=method, epochs=1,
                  cache_dir=tmp_path / "mapped")
    assert res.data.retain.mapped and res.data.retain_train.mapped
    assert 0.0 <= res.report.metrics["unlearned"]["ta"] <= 100.0


def test_the_decoded_cache_is_reused_and_a_write_to_it_never_reaches_the_file(tmp_path):
    from transformers import ViTImageProcessor

    ds = random_images(40, 8)
    proc = ViTImageProcessor(size={"height": 8, "width": 8})
    first, _ = encode_images(ds, "image", proc, 3, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("*/pixels.npy")
    stamp = cache.stat().st_mtime_ns, cache.read_bytes()
    again, _ = encode_images(ds, "image", proc, 3, cache_dir=tmp_path)
    assert torch.equal(again, first)
    again.zero_()  # the cache is mapped copy-on-write: this changes this process's pages only
    assert (cache.stat().st_mtime_ns, cache.read_bytes()) == stamp
    third, _ = encode_images(ds, "image", proc, 3, cache_dir=tmp_path)
    assert torch.equal(third, first)
