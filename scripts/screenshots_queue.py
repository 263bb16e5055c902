"""Screenshots of what a public Space's visitors see when the app is busy, in headless Chromium.

Three visitors (each a browser context of its own: its own Gradio session) on an app whose queue holds one
waiting job (``HF_UNLEARN_QUEUE_SIZE=1``):

- ``queue-running.png``: the first visitor's run trains;
- ``queue-waiting.png``: the second's waits, and its progress display says its place in line;
- ``queue-busy.png``: the third is told the app is busy (the line is full);
- ``queue-cancelling.png``: the second presses Cancel while waiting, and its display says the job stops at its
  next step (only if a redraw comes before it has left the line: on the demo that takes a fraction of a second);
- ``queue-cancelled.png``: the second's cancelled view (the grey box); then the first cancels too.

``--readme`` copies the waiting and busy views to ``docs/app-queue-waiting.png`` and ``docs/app-busy.png``.

    python scripts/screenshots_queue.py --out test-artifacts/screens [--readme]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from browser import demo_browser, open_page, start_long_run  # noqa: E402 - the scripts folder is not a package


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "screens")
    ap.add_argument("--readme", action="store_true", help="also copy the waiting and busy views to docs/")
    args = ap.parse_args()
    from playwright.sync_api import expect

    os.environ["HF_UNLEARN_QUEUE_SIZE"] = "1"  # read at every admission: one running, one waiting, the rest busy
    args.out.mkdir(parents=True, exist_ok=True)
    with demo_browser() as (browser, url):
        first, second, third = (open_page(browser, url) for _ in range(3))
        start_long_run(first)
        expect(first.locator("#progress .hfu-phase")).to_contain_text("unlearning with rbm", timeout=60_000)
        first.wait_for_timeout(1500)
        first.locator("#views").screenshot(path=str(args.out / "queue-running.png"))

        start_long_run(second)
        expect(second.locator("#progress")).to_contain_text("Waiting in the queue: position 1 of 1",
                                                            timeout=30_000)
        second.wait_for_timeout(1000)
        second.locator("#views").screenshot(path=str(args.out / "queue-waiting.png"))

        start_long_run(third)
        expect(third.locator("#status .hfu-error")).to_contain_text("the app is busy", timeout=30_000)
        third.wait_for_timeout(500)
        third.locator("#views").screenshot(path=str(args.out / "queue-busy.png"))

        second.locator("#cancel").click()  # out of the line; the display may say "Cancelling" for a moment
        try:
            expect(second.locator("#progress")).to_contain_text("Cancelling", timeout=3_000)
            second.locator("#views").screenshot(path=str(args.out / "queue-cancelling.png"))
        except AssertionError:
            print("the waiting job left the line before the display showed 'Cancelling': no queue-cancelling.png")
        expect(second.locator("#status .hfu-cancelled")).to_contain_text("Cancelled.", timeout=30_000)
        second.wait_for_timeout(500)
        second.locator("#views").screenshot(path=str(args.out / "queue-cancelled.png"))
        first.locator("#cancel").click()
        expect(first.locator("#status .hfu-cancelled")).to_contain_text("Cancelled.", timeout=30_000)
    if args.readme:
        shutil.copy(args.out / "queue-waiting.png", ROOT / "docs" / "app-queue-waiting.png")
        shutil.copy(args.out / "queue-busy.png", ROOT / "docs" / "app-busy.png")
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
