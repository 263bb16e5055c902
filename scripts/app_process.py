"""The app as a separate server process on 127.0.0.1, as a Space runs it (``python app.py``), for the soak and
kill tests: started, waited for, measured (RSS), and killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    """``python app.py`` with its own environment (a cache folder, limits), on a free port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        full = {**os.environ, **env, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_ANALYTICS_ENABLED": "False",
                "PYTHONUNBUFFERED": "1"}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=full, stdout=out,
                                         stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        import httpx

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode}: see {self.log}")
            try:
                if httpx.get(self.url + "gradio_api/info", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the app did not answer within {timeout:.0f} s: see {self.log}")

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def kill(self) -> None:
        """SIGKILL: no handler runs, no file is closed (a crash, an out-of-memory kill, a Space restart)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


_CLIENTS = threading.Lock()


def visitor(url: str, heartbeat: bool = True) -> Any:
    """A ``gradio_client`` visitor of the app. ``heartbeat=False``: a script's caller (``curl``, a loop posting
    to the HTTP API), which never opens the page's heartbeat, so the server is never told that it left;
    ``gradio_client`` starts the heartbeat in its constructor, which is patched for this one client."""
    from gradio_client import Client

    with _CLIENTS:
        if heartbeat:
            return Client(url, verbose=False)
        real = Client.__dict__["_stream_heartbeat"]
        Client._stream_heartbeat = staticmethod(lambda *a, **k: None)
        try:
            return Client(url, verbose=False)
        finally:
            Client._stream_heartbeat = real


def wait_until(predicate: Any, timeout: float) -> bool:
    """Poll ``predicate`` every 0.1 s until it holds or ``timeout`` seconds pass; its last answer."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def folder_mb(path: Path) -> float:
    total = 0
    for p in path.rglob("*") if path.exists() else []:
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:  # removed meanwhile (an eviction)
            pass
    return total / 2**20
