"""Load: 8 gradio_client users at once on the offline demo, with the production queue.

Every job must complete (runs queue one at a time on their own slot), each
client must get the results of its own request (its forget class in its own
status and report), and the server process's memory must stay bounded. The
figures (peak RSS growth, time per job) go to test-artifacts/load.json.
"""

from __future__ import annotations

import json
import threading
import time

import psutil
from conftest import ARTIFACTS, NO_FILES
from test_app import client, free_port

CLIENTS = 8
MEMORY_BOUND_MB = 1500  # growth of the server process over the whole load, not its size


def test_eight_concurrent_clients_all_complete_with_their_own_results(demo_assets):
    from hf_unlearn.ui import build_app, queued

    app = queued(build_app())
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    results: dict[str, tuple] = {}
    times: dict[str, float] = {}
    errors: list[str] = []

    def user(cls: str) -> None:
        t0 = time.perf_counter()
        try:
            results[cls] = client(url).predict(api_name="/run", model="", dataset="", forget_kind="class",
                                               forget_classes=[cls], **NO_FILES,
                                               method="ft", epochs=1, with_retrain=False)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(f"{cls}: {exc}")
        times[cls] = time.perf_counter() - t0

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t_start = time.perf_counter()
    users = [threading.Thread(target=user, args=(str(c),)) for c in range(CLIENTS)]
    try:
        for t in users:
            t.start()
        for t in users:
            t.join(timeout=900)
    finally:
        done.set()
        app.close()
    wall = time.perf_counter() - t_start
    assert not errors, errors
    assert sorted(results) == [str(c) for c in range(CLIENTS)]
    for cls, out in results.items():
        status = out[0]
        assert "**Error" not in status, status
        assert f"forget class {cls}." in status, (cls, status)
        others = [c for c in results if c != cls]
        assert not any(f"forget class {o}." in status for o in others), status
    growth_mb = (peak[0] - base) / 2**20
    figures = {"clients": CLIENTS, "wall_s": round(wall, 1), "per_job_s": {k: round(v, 1) for k, v in times.items()},
               "mean_job_s": round(sum(times.values()) / len(times), 1), "rss_base_mb": round(base / 2**20),
               "rss_peak_mb": round(peak[0] / 2**20), "rss_growth_mb": round(growth_mb)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(figures, indent=1))
    print(figures)
    assert growth_mb < MEMORY_BOUND_MB, figures
