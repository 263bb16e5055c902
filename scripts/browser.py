"""What the screenshot scripts share: the app on the offline demo, served on loopback, in headless Chromium."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def demo_browser() -> Iterator[tuple[Any, str]]:
    """(headless Chromium, the URL of a fresh app on the demo, its assets built first); both close after."""
    if not Path(CHROMIUM).exists():
        sys.exit("Debian's chromium is not installed (apt-get install chromium)")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import sync_playwright

    from hf_unlearn.demo import ensure_demo_assets
    from hf_unlearn.ui.app import serve_on_loopback

    ensure_demo_assets()
    app, url = serve_on_loopback()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            yield browser, url
            browser.close()
    finally:
        app.close()


def open_page(browser: Any, url: str, width: int = 1400, height: int = 1000) -> Any:
    """A page of its own (a new context: its own Gradio session, as another visitor has), loaded."""
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(url)
    expect(page.locator("#run")).to_be_visible(timeout=30_000)
    return page


@contextmanager
def demo_page(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A Playwright page on a fresh app (the demo's assets built first); the app and browser close after."""
    with demo_browser() as (browser, url):
        yield open_page(browser, url, width, height)


def start_long_run(page: Any) -> None:
    """Click Run for an RBM run long enough to watch (5000 epochs, no Retrain)."""
    page.locator("#short-epochs input").fill("5000")
    page.locator("#short-epochs input").press("Tab")
    page.locator("#with-retrain input").uncheck()
    page.locator("#run").click()


def run_then_cancel(page: Any) -> None:
    """Start an RBM run long enough to cancel (5000 epochs, no Retrain), press Cancel once it trains, and wait
    for the cancelled state; the form's epochs stay at 5000 for the caller to put back."""
    from playwright.sync_api import expect

    start_long_run(page)
    expect(page.locator("#progress .hfu-phase")).to_contain_text("unlearning with rbm", timeout=60_000)
    page.locator("#cancel").click()
    expect(page.locator("#status .hfu-cancelled")).to_contain_text("Cancelled.", timeout=15_000)
