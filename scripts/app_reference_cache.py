"""The reference cache as an app user meets it: two runs of one request with two methods, timed.

Starts the app on the offline demo with an empty hf-unlearn cache (the demo assets are built first, outside
the timing), then runs, through ``gradio_client``, RBM and then MinNorm-OG on the same request with the
Retrain reference. The first run trains Retrain; the second reads it from the cache. Prints both wall
times and their ratio, labelled with the machine. The client does not download the answer's images unless
``--download-files`` (a browser fetches them itself).

    python scripts/app_reference_cache.py [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="the methods' epochs (the app's default is 2)")
    ap.add_argument("--download-files", action="store_true",
                    help="let gradio_client download every image and file of the answer (19 files, one after "
                         "another; a browser loads them itself, in parallel): adds about 1 s to each run")
    args = ap.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from hf_unlearn.demo import ensure_demo_assets
    from hf_unlearn.hub import default_cache_dir

    ensure_demo_assets()
    shutil.rmtree(default_cache_dir() / "references", ignore_errors=True)  # an empty reference cache
    from gradio_client import Client

    from hf_unlearn.ui.app import serve_on_loopback

    app, url = serve_on_loopback()
    try:
        client = Client(url, verbose=False, download_files=args.download_files)
        times = []
        for method in ("rbm", "minnorm-og"):
            t0 = time.perf_counter()
            out = client.predict(api_name="/run", forget_index_file=None, forget_id_file=None, tuned_file=None,
                                 method=method,
                                 epochs=args.epochs, with_retrain=True)
            times.append(time.perf_counter() - t0)
            status = out[0].splitlines()
            cached = next((line for line in status if line.startswith("Retrain reference")), "")
            print(f"{method}: {times[-1]:.2f} s wall | {cached.rsplit('; ', 1)[-1]}")
        print(f"second / first = {times[1] / times[0]:.1%}  ({os.cpu_count()} CPU cores, {platform.machine()}, "
              f"torch CPU, gradio_client over loopback, download_files={args.download_files})")
    finally:
        app.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("HF_UNLEARN_CACHE", str(Path(tmp) / "cache"))
        main()
