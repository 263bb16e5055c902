"""Cancelling before the engine exists: loading and decoding stop, and leave nothing in the cache."""

from __future__ import annotations

import threading

import pytest
from conftest import random_images

from hf_unlearn import Cancelled, unlearn
from hf_unlearn.cancel import cancellable, raise_if_cancelled
from hf_unlearn.data import encode_images


class _CancelOnFirstChunk:
    """An image processor that presses cancel while the first chunk decodes, and counts chunks."""

    def __init__(self, event: threading.Event) -> None:
        from transformers import ViTImageProcessor

        self.inner = ViTImageProcessor(size={"height": 8, "width": 8})
        self.event, self.calls = event, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        self.event.set()
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("memory_limit", [None, 0], ids=["in-memory", "spilled to a map"])
def test_decoding_stops_after_the_chunk_in_which_cancel_was_pressed(tmp_path, memory_limit):
    event = threading.Event()
    proc = _CancelOnFirstChunk(event)
    with cancellable(event), pytest.raises(Cancelled):
        encode_images(random_images(1000, 8), "image", proc, 3, cache_dir=tmp_path, batch_size=100,
                      memory_limit=memory_limit)
    assert proc.calls == 1  # 9 of the 10 chunks never decoded
    # no cache entry, no half-written map or temp folder: only the mark that the folder is a cache
    assert [p.name for p in tmp_path.iterdir()] == [".hf-unlearn-cache"]


def test_a_run_cancelled_before_it_starts_writes_nothing(demo_assets, tmp_path):
    event = threading.Event()
    event.set()
    with pytest.raises(Cancelled):
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="ft", epochs=1, cache_dir=tmp_path,
                cancel=event)
    assert list(tmp_path.iterdir()) == []  # stopped before decoding


def test_the_scope_ends_with_its_block():
    event = threading.Event()
    event.set()
    with cancellable(event), pytest.raises(Cancelled):
        raise_if_cancelled()
    raise_if_cancelled()  # outside the run the same event stops nothing
