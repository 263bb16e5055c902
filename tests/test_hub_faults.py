"""Hub faults through the real clients (loopback server fault injection): retry, resume, bounded waits."""

from __future__ import annotations

import time

import pytest
from conftest import TOKEN

from hf_unlearn import UnlearnError
from hf_unlearn.config import ModelSource
from hf_unlearn.hub import load_model

WEIGHTS = r"/alice/tiny/resolve/[^/]+/model\.safetensors$"


@pytest.fixture()
def fresh(published, tmp_path, monkeypatch):
    """alice/tiny on the loopback Hub, and an empty download cache so every test really downloads."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_UNLEARN_HUB_BACKOFF", "0.05")  # keep the tests quick; the default starts at 1 s
    return published


def _weights_gets(hub) -> list[int]:
    import re

    return [status for method, path, status in hub.state.log if method == "GET" and re.search(WEIGHTS, path)]


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_download_retries_transient_errors_with_backoff(fresh, status):
    fresh.state.inject("GET", WEIGHTS, status=status, times=2)
    model, _, _ = load_model(ModelSource("alice/tiny"), token=TOKEN)
    assert model.config.num_labels == 10
    assert _weights_gets(fresh)[:2] == [status, status] and _weights_gets(fresh)[-1] in (200, 206)


def test_a_download_cut_mid_body_completes(fresh):
    fresh.state.inject("GET", WEIGHTS, truncate=20_000, times=1)
    model, _, _ = load_model(ModelSource("alice/tiny"), token=TOKEN)
    assert model.config.num_labels == 10


def test_a_large_download_cut_mid_body_resumes_with_a_range_request(fresh, tmp_path):
    """huggingface_hub writes 10 MB chunks to a .incomplete file and, on retry, asks only for the rest."""
    import numpy as np
    from huggingface_hub import HfApi, hf_hub_download

    from hf_unlearn.hub import with_retries

    blob = np.random.default_rng(0).integers(0, 256, 24 * 2**20, dtype=np.uint8).tobytes()
    HfApi(token=TOKEN).upload_file(path_or_fileobj=blob, path_in_repo="big.bin", repo_id="alice/tiny")
    fresh.state.inject("GET", r"/alice/tiny/resolve/[^/]+/big\.bin$", truncate=15 * 2**20, times=1)
    path = with_retries(lambda: hf_hub_download("alice/tiny", "big.bin", token=TOKEN))
    assert open(path, "rb").read() == blob
    ranged = [r for p, r in fresh.state.ranges if p.endswith("big.bin")]
    assert ranged == [f"bytes={10 * 2**20}-"], ranged  # resumed after the first complete chunk


def test_a_dropped_connection_is_retried(fresh):
    fresh.state.inject("GET", WEIGHTS, drop=True, times=2)
    model, _, _ = load_model(ModelSource("alice/tiny"), token=TOKEN)
    assert model.config.num_labels == 10


def test_persistent_server_errors_give_up_with_one_line(fresh):
    fresh.state.inject("GET", WEIGHTS, status=503, times=100)
    with pytest.raises(UnlearnError) as e:
        load_model(ModelSource("alice/tiny"), token=TOKEN)
    msg = str(e.value)
    assert "\n" not in msg and "HTTP 503" in msg and "try again later" in msg and TOKEN not in msg


def test_a_hanging_hub_times_out_in_bounded_time(fresh, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_ETAG_TIMEOUT", 1)
    monkeypatch.setenv("HF_UNLEARN_HUB_RETRIES", "1")
    fresh.state.inject("*", r"/alice/tiny/", delay=3, times=100)
    t0 = time.perf_counter()
    with pytest.raises(UnlearnError) as e:
        load_model(ModelSource("alice/tiny"), token=TOKEN)
    elapsed = time.perf_counter() - t0
    msg = str(e.value)
    assert "\n" not in msg and ("timed out" in msg or "could not reach the Hub" in msg), msg
    assert elapsed < 60, elapsed  # every request gives up after 1 s; transformers makes several per attempt


def test_client_errors_are_not_retried(fresh, monkeypatch):
    """A 404 is an answer, not a fault: it must be reported at once, not retried with backoff."""
    monkeypatch.setenv("HF_UNLEARN_HUB_BACKOFF", "3")
    t0 = time.perf_counter()
    with pytest.raises(UnlearnError) as e:
        load_model(ModelSource("alice/no-such-model"), token=TOKEN)
    assert time.perf_counter() - t0 < 3  # no backoff wait happened
    assert "was not found" in str(e.value)


def test_an_error_answer_to_head_has_no_body(hub):
    """A body after a HEAD answer would be read as the next answer's status line on a kept-alive connection
    (gradio's telemetry HEAD once broke the next Hub call that way). Read raw: http.client drops such bytes."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(hub.endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(b"HEAD /api/no/such/route HTTP/1.1\r\nHost: hub\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        sock.settimeout(0.5)
        try:
            data += sock.recv(4096)  # anything after the headers is the bug
        except TimeoutError:
            pass
    assert data.startswith(b"HTTP/1.1 404") and data.endswith(b"\r\n\r\n"), data[-80:]
