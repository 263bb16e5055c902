"""Soak: repeated jobs against ``python app.py`` (its own process, as a Space runs it) for a fixed time, on
127.0.0.1, measuring whether memory or disk grows.

Two kinds of visitor run side by side until the time is up:

- a stream of new visitors, each a fresh ``gradio_client`` session that runs one job and leaves: a run with its
  Retrain reference (the forget class and seed vary, so new references are trained, stored and evicted), a bad
  input, a Cancel while training, a page closed with a 5000-epoch job running, or a script that calls ``/run``
  without the page's heartbeat and never closes (its session, with a model, stays until the app's session sweep
  frees it: ``HF_UNLEARN_SESSIONS_MAX`` and ``HF_UNLEARN_SESSION_IDLE_S``, which the soak sets low);
- one visitor who stays on the page and keeps running (RBM, no reference), as a user comparing results does.

Every few seconds it samples the server's RSS, its open files and threads, the cache folder
(``HF_UNLEARN_CACHE``, bounded by ``HF_UNLEARN_CACHE_MB``) and the temporary folders (``TMPDIR`` and
``GRADIO_TEMP_DIR`` of the app; Gradio's copies of served files go after ``HF_UNLEARN_FILES_MAX_AGE_S``, which
the soak sets to two minutes so that their removal happens within it). It fits a line (MB per minute) to each
after a warm-up and over the second half, and writes the samples and the figures to ``test-artifacts/soak.json``.
Every job's outcome is checked: a run shows its own forget class, a Cancel the grey box, a bad input its one-line
error.

    python scripts/soak.py --minutes 12 [--cache-mb 12] [--out test-artifacts/soak.json]
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from app_process import AppProcess, folder_mb, visitor, wait_until  # noqa: E402 - the scripts folder is not a package

NO_FILES = {"forget_index_file": None, "forget_id_file": None, "tuned_file": None}
LONG = dict(**NO_FILES, method="retrain", epochs=5000, with_retrain=False)
CYCLE = ("reference", "bad", "reference", "cancel", "reference", "closed", "script")  # what the stream of visitors does


def _error_line(shown: str) -> str:
    if "<b>Error:</b> " not in shown:
        return ""
    return html.unescape(shown.split("<b>Error:</b> ", 1)[1].rsplit("</div>", 1)[0])


def slope_mb_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    cov = sum((t - mt) * (v - mv) for t, v in points)
    return 60 * cov / var if var else None


def _rss_parts(pid: int) -> dict[str, float]:
    """RSS split as the kernel counts it: anonymous memory (the heap) apart from mapped files (libraries).

    Only the anonymous part can be a leak; the file part grows as code pages are first touched.
    """
    parts: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                parts[key.lower().replace("rss", "rss_") + "_mb"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return parts


class Soak:
    """The app process, the two visitors, the sampler, and what they saw."""

    def __init__(self, seconds: float, cache_mb: int, files_age_s: int, sample_s: float, work: Path,
                 app_env: dict[str, str] | None = None, sessions_max: int = 8, session_idle_s: int = 300) -> None:
        from hf_unlearn.ui.views import CANCELLED

        self.cancelled_box = CANCELLED
        self.seconds, self.sample_s = seconds, sample_s
        self.cache, self.tmp, self.gradio_tmp = work / "cache", work / "tmp", work / "gradio"
        for folder in (self.cache, self.tmp, self.gradio_tmp):
            folder.mkdir(parents=True)
        self.cache_mb = cache_mb
        self.app = AppProcess({"HF_UNLEARN_CACHE": str(self.cache), "HF_UNLEARN_CACHE_MB": str(cache_mb),
                               "TMPDIR": str(self.tmp), "GRADIO_TEMP_DIR": str(self.gradio_tmp),
                               "HF_UNLEARN_FILES_MAX_AGE_S": str(files_age_s),
                               "HF_UNLEARN_SESSIONS_MAX": str(sessions_max),
                               "HF_UNLEARN_SESSION_IDLE_S": str(session_idle_s), **(app_env or {})},
                              work / "app.log")
        self.app_env = app_env or {}
        self.files_age_s = files_age_s
        self.sessions_max, self.session_idle_s = sessions_max, session_idle_s
        self.samples: list[dict[str, float]] = []
        self.jobs: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def record(self, kind: str, seconds: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.jobs.append({"kind": kind, "s": round(seconds, 2), "ok": ok})
            if not ok:
                self.failures.append(f"{kind}: {detail[:300]}")

    def sample(self, t0: float) -> None:
        import psutil

        proc = psutil.Process(self.app.proc.pid)
        while not self.stop.is_set():
            try:
                self.samples.append({
                    "t_s": round(time.monotonic() - t0, 1), "rss_mb": round(proc.memory_info().rss / 2**20, 1),
                    **_rss_parts(proc.pid),
                    "cache_mb": round(folder_mb(self.cache), 2),
                    "tmp_mb": round(folder_mb(self.tmp) + folder_mb(self.gradio_tmp), 2),
                    "open_files": proc.num_fds(), "threads": proc.num_threads()})
            except psutil.Error:
                return
            self.stop.wait(self.sample_s)

    def one_visitor(self, kind: str, i: int) -> None:
        """A new session that does one thing and leaves."""
        t = time.perf_counter()
        c = visitor(self.app.url, heartbeat=kind != "script")
        try:
            if kind in ("reference", "script"):
                cls, seed = i % 10, i % 3
                out = c.predict(api_name="/run", **NO_FILES, forget_kind="class", forget_classes=[str(cls)],
                                seed=seed, method="ft", epochs=1, with_retrain=True)
                ok = out[0].startswith("Done") and f"forget class {cls}." in out[0]
                self.record(kind, time.perf_counter() - t, ok, out[0])
            elif kind == "bad":
                out = c.predict(api_name="/run", **{**NO_FILES, "forget_kind": "indices", "forget_indices": "1,x"},
                                method="ft", epochs=1, with_retrain=False)
                line = _error_line(out[0])
                ok = "forget index 'x' is not an integer row number" in line and "\n" not in line
                self.record(kind, time.perf_counter() - t, ok, out[0])
            else:
                job = c.submit(api_name="/run", **LONG)
                started = wait_until(lambda: any("epoch" in str(o[-2]) for o in job.outputs()), 120)
                if kind == "closed":
                    c.close()  # the page goes away with its job running: the server must stop it
                    self.record(kind, time.perf_counter() - t, started, "the job never started")
                    return
                c.predict(api_name="/cancel")
                out = job.result(timeout=120)
                self.record(kind, time.perf_counter() - t, started and out[0] == self.cancelled_box, out[0])
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            self.record(kind, time.perf_counter() - t, False, f"{type(exc).__name__}: {exc}")
        finally:
            c.close()

    def stream(self, end: float) -> None:
        i = 0
        while time.monotonic() < end and not self.stop.is_set():
            self.one_visitor(CYCLE[i % len(CYCLE)], i)
            i += 1

    def regular(self, end: float) -> None:
        """One page, many runs: what it keeps is bounded by the app (its last results), not by the run count."""
        c = visitor(self.app.url)
        i = 0
        try:
            while time.monotonic() < end and not self.stop.is_set():
                t = time.perf_counter()
                cls = (3 * i) % 10
                try:
                    out = c.predict(api_name="/run", **NO_FILES, forget_kind="class", forget_classes=[str(cls)],
                                    method="rbm", epochs=1, with_retrain=False)
                    ok = out[0].startswith("Done") and f"forget class {cls}." in out[0]
                    if not ok and "this page has a job running or waiting already" in _error_line(out[0]):
                        ok = True  # the previous job's end and this click crossed: refused, as it should be
                    self.record("regular", time.perf_counter() - t, ok, out[0])
                except Exception as exc:  # noqa: BLE001
                    self.record("regular", time.perf_counter() - t, False, f"{type(exc).__name__}: {exc}")
                i += 1
        finally:
            c.close()

    def run(self) -> dict[str, Any]:
        self.app.wait_ready()
        warm = visitor(self.app.url)  # builds the demo assets in this cache: not part of the measured time
        warm.predict(api_name="/run", **NO_FILES, method="ft", epochs=1, with_retrain=False)
        warm.close()
        t0 = time.monotonic()
        end = t0 + self.seconds
        sampler = threading.Thread(target=self.sample, args=(t0,), daemon=True)
        visitors = [threading.Thread(target=self.stream, args=(end,)), threading.Thread(target=self.regular,
                                                                                          args=(end,))]
        sampler.start()
        for v in visitors:
            v.start()
        for v in visitors:
            v.join()
        time.sleep(2 * self.sample_s)  # the closed sessions' jobs stop; the last samples after the load
        self.stop.set()
        sampler.join(timeout=30)
        wall = time.monotonic() - t0
        self.app.stop()
        return self.figures(wall)

    def figures(self, wall: float) -> dict[str, Any]:
        s = self.samples
        warm_s = min(120.0, wall / 4)
        after_warm = [x for x in s if x["t_s"] >= warm_s]
        second_half = [x for x in s if x["t_s"] >= wall / 2]

        def fit(name: str, rows: list[dict[str, float]]) -> float | None:
            value = slope_mb_per_min([(x["t_s"], x[name]) for x in rows])
            return None if value is None else round(value, 3)

        kinds: dict[str, dict[str, Any]] = {}
        for job in self.jobs:
            k = kinds.setdefault(job["kind"], {"count": 0, "ok": 0, "s": []})
            k["count"] += 1
            k["ok"] += job["ok"]
            k["s"].append(job["s"])
        for k in kinds.values():
            times = k.pop("s")
            k["mean_s"], k["max_s"] = round(sum(times) / len(times), 1), round(max(times), 1)
        return {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU only",
            "minutes": round(wall / 60, 2), "jobs": len(self.jobs), "by_kind": kinds,
            "failures": self.failures, "samples": len(s), "cache_limit_mb": self.cache_mb,
            "files_max_age_s": self.files_age_s, "sessions_max": self.sessions_max,
            "session_idle_s": self.session_idle_s,
            "rss_first_mb": s[0]["rss_mb"], "rss_last_mb": s[-1]["rss_mb"],
            "rss_peak_mb": max(x["rss_mb"] for x in s),
            "rss_slope_after_warmup_mb_per_min": fit("rss_mb", after_warm),
            "rss_slope_second_half_mb_per_min": fit("rss_mb", second_half),
            "rss_anon_slope_second_half_mb_per_min": fit("rss_anon_mb", second_half) if "rss_anon_mb" in s[0] else None,
            "rss_file_slope_second_half_mb_per_min": fit("rss_file_mb", second_half) if "rss_file_mb" in s[0] else None,
            "app_env": self.app_env,
            "cache_peak_mb": max(x["cache_mb"] for x in s), "cache_last_mb": s[-1]["cache_mb"],
            "cache_slope_second_half_mb_per_min": fit("cache_mb", second_half),
            "tmp_peak_mb": max(x["tmp_mb"] for x in s), "tmp_last_mb": s[-1]["tmp_mb"],
            "tmp_slope_second_half_mb_per_min": fit("tmp_mb", second_half),
            "open_files_first": s[0]["open_files"], "open_files_last": s[-1]["open_files"],
            "threads_first": s[0]["threads"], "threads_last": s[-1]["threads"],
            "warmup_s": round(warm_s), "series": s,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--cache-mb", type=int, default=12, help="HF_UNLEARN_CACHE_MB of the app: small, so it evicts")
    ap.add_argument("--files-age-s", type=int, default=120,
                    help="HF_UNLEARN_FILES_MAX_AGE_S of the app: short, so that Gradio's copies go within the soak")
    ap.add_argument("--sessions-max", type=int, default=8,
                    help="HF_UNLEARN_SESSIONS_MAX of the app: low, so that the scripts' sessions are swept within it")
    ap.add_argument("--session-idle-s", type=int, default=300, help="HF_UNLEARN_SESSION_IDLE_S of the app")
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--app-env", action="append", default=[], metavar="NAME=VALUE",
                    help="an extra environment variable for the app (repeatable), e.g. MALLOC_ARENA_MAX=2")
    ap.add_argument("--keep", type=Path, help="work in this (new) folder and keep it: the cache, files and app log")
    ap.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "soak.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hf-unlearn-soak-") as scratch:
        work = args.keep or scratch
        app_env = dict(item.split("=", 1) for item in args.app_env)
        soak = Soak(args.minutes * 60, args.cache_mb, args.files_age_s, args.sample_s, Path(work), app_env,
                    args.sessions_max, args.session_idle_s)
        try:
            figures = soak.run()
        finally:
            soak.stop.set()
            soak.app.stop()
        log_tail = (Path(work) / "app.log").read_text(errors="replace")[-3000:]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1))
    shown = {k: v for k, v in figures.items() if k != "series"}
    print(json.dumps(shown, indent=1))
    if figures["failures"]:
        print("app log (tail):\n" + log_tail)
        raise SystemExit(f"{len(figures['failures'])} jobs did not end as they should: see {args.out}")


if __name__ == "__main__":
    main()
