"""The app in a real browser: headless Chromium (Debian's package) driven by Playwright.

Picks the demo, selects a class, runs RBM, waits for the metrics table and the
chart, pushes to the loopback Hub and checks the commit URL; saves a
screenshot under test-artifacts/. Skipped only where Chromium is not installed
(``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import ARTIFACTS, TOKEN
from test_app import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from browser import run_then_cancel  # noqa: E402 - the scripts folder is not a package

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: no sandbox (CI runs as root), no GPU, and nothing that would reach the network on its own
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture()
def served_app(demo_assets, hub):
    from hf_unlearn.ui import build_app
    from hf_unlearn.ui.app import APP_CSS

    app = build_app()
    app.queue()
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=APP_CSS)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_demo_rbm_run_and_push_in_a_real_browser(served_app, hub):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(served_app)
        expect(page.get_by_text("hf-unlearn").first).to_be_visible(timeout=30_000)

        # choose a second class to forget, next to the preset "3"
        classes = page.locator("#forget-classes input")
        classes.click()
        page.get_by_role("option", name="5", exact=True).click()
        page.keyboard.press("Escape")
        expect(page.locator("#method input")).to_have_value("rbm")
        # nothing has been tuned in this session's cache: the page says the defaults are used, and how to tune
        expect(page.locator("#tuned-info")).to_contain_text("No tuned settings for rbm", timeout=30_000)

        page.locator("#run").click()
        metrics = page.locator("#metrics")
        expect(metrics).to_contain_text("rbm (unlearned)", timeout=240_000)
        expect(metrics).to_contain_text("retrain")
        assert re.search(r"\d+\.\d+", metrics.inner_text())
        expect(page.locator("#per-class img")).to_be_visible(timeout=30_000)
        expect(page.locator("#status")).to_contain_text("forget class 3, 5")

        page.get_by_label("Hub token (write)").fill(TOKEN)
        page.locator("#push-repo textarea, #push-repo input").first.fill("alice/browser-unlearned")
        page.locator("#push").click()
        result = page.locator("#push-result")
        expect(result).to_contain_text("Pushed:", timeout=120_000)
        assert f"{hub.endpoint}/alice/browser-unlearned/commit/" in result.inner_text()
        page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
        browser.close()
    assert ("model", "alice/browser-unlearned") in hub.state.repos
    assert TOKEN not in (ARTIFACTS / "app.png").read_bytes().decode("latin-1")


@contextmanager
def open_page(url: str, height: int = 1800) -> Iterator[Any]:
    """A headless Chromium page on the app, its first view loaded (the browser closes after, also on failure)."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": height})
            page.goto(url)
            expect(page.locator("#run")).to_be_visible(timeout=30_000)
            yield page
        finally:
            browser.close()


def test_compare_view_in_a_real_browser(served_app):
    from playwright.sync_api import expect

    with open_page(served_app) as page:
        page.get_by_label("seeds (e.g. 0,1,2; empty: the seed)").fill("0,1")
        page.get_by_role("tab", name="Compare methods").click()
        methods = page.locator("#compare-methods")
        methods.get_by_label("salun").uncheck()
        methods.get_by_label("ft", exact=True).check()
        page.locator("#compare-run").click()
        table = page.locator("#compare-table")
        expect(table).to_contain_text("retrain (gold standard)", timeout=300_000)
        text = table.inner_text()
        for row in ("none (untouched)", "rbm", "minnorm-og", "ft"):
            assert row in text, row
        assert "salun" not in text and " ± " in text
        expect(page.locator("#pareto img")).to_be_visible(timeout=30_000)
        expect(page.locator("#compare-status")).to_contain_text("Done: rbm, minnorm-og, ft")
        page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)


def test_audit_view_in_a_real_browser(served_app):
    """The Audit view: N = 8 for RBM on the preset class; the score, its ceiling and the histogram appear."""
    from playwright.sync_api import expect

    with open_page(served_app) as page:
        page.get_by_role("tab", name="Audit forgetting").click()
        page.locator("#audit-n input").click()
        page.get_by_role("option", name="8", exact=True).click()
        page.locator("#audit-run").click()
        status = page.locator("#audit-status")
        expect(status).to_contain_text("Forgetting quality F =", timeout=400_000)
        assert re.search(r"F = \d\.\d{4} \(ceiling at N = 8: \d\.\d{4}\)", status.inner_text()), status.inner_text()
        expect(status).to_contain_text("F = 0 means every forget example is exposed")
        expect(page.locator("#audit-hist img")).to_be_visible(timeout=30_000)
        scores = page.locator("#audit-scores")
        for label in ("Forgetting quality F", "Ceiling of F", "Final score"):
            expect(scores).to_contain_text(label)
        page.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)


def test_an_id_list_request_in_a_real_browser(served_app, digits, demo_assets, tmp_path):
    """The digits with a user_id column: Inspect dataset fills the ID column picker; three users and one unknown
    ID typed; the run's status counts the unknown one without naming it."""
    from playwright.sync_api import expect

    train = digits["train"].add_column("user_id", [f"u{i % 50}" for i in range(len(digits["train"]))])
    folder = tmp_path / "digits-users"
    folder.mkdir()
    train.to_parquet(str(folder / "train.parquet"))
    digits["test"].to_parquet(str(folder / "test.parquet"))
    with open_page(served_app, height=1600) as page:
        page.locator("#model input").fill(str(demo_assets[0]))
        page.keyboard.press("Enter")
        expect(page.locator("#dataset input")).to_have_value("")  # another model never keeps the demo's digits
        page.locator("#dataset input").fill(str(folder))
        page.keyboard.press("Enter")
        page.get_by_text("Model and dataset details").click()
        page.get_by_role("button", name="Inspect dataset").click()
        expect(page.locator("#inspect-msg")).to_contain_text("columns label, user_id", timeout=60_000)
        page.locator("#forget-kind").get_by_label("ids").check()
        page.locator("#forget-id-column input").click()
        page.get_by_role("option", name="user_id", exact=True).click()
        page.get_by_label("ids: IDs (comma separated)").fill("u3, u17, u29, stranger-42")
        page.locator("#with-retrain input").uncheck()
        page.locator("#run").click()
        status = page.locator("#status")
        expect(status).to_contain_text("Done: rbm, forget 4 listed user_id values", timeout=300_000)
        expect(status).to_contain_text("1 of the 4 values asked for match no training row")
        assert "stranger" not in status.inner_text()
        page.screenshot(path=str(ARTIFACTS / "ids.png"), full_page=True)


def test_walkthrough_at_1400_by_1000(served_app, monkeypatch, tmp_path):
    """What a new user meets, in a 1400×1000 window: each forget kind shows only its own inputs; the demo run
    shows one progress display with named phases, then its result; the checkpoint zip downloads and loads with
    ``from_pretrained``; Cancel leaves a cancelled state with every result panel empty, and the next run works;
    a wrong Hub id with no Hub reachable fails in under 10 s with one line."""
    import time
    import zipfile

    from playwright.sync_api import expect
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from hf_unlearn import hub as hub_module
    from hf_unlearn.forget import all_kinds

    with open_page(served_app, height=1000) as page:
        page.screenshot(path=str(ARTIFACTS / "walk-landing.png"))
        kinds = [k.name for k in all_kinds()]
        for kind in [*kinds[1:], kinds[0]]:  # every kind, back to the first
            page.locator("#forget-kind").get_by_label(kind, exact=True).check()
            expect(page.locator(f"#kind-{kind}")).to_be_visible()
            for other in kinds:
                if other != kind:
                    expect(page.locator(f"#kind-{other}")).to_be_hidden()
            seed_row = expect(page.locator("#forget-seed-row"))
            seed_row.to_be_visible() if kind == "random" else seed_row.to_be_hidden()
        expect(page.locator("#method input")).to_have_value("rbm")
        expect(page.locator("#short-epochs input")).to_have_value("5")  # the method's own, as in its table

        page.locator("#cancel").click()  # nothing runs yet: a toast says so, the view stays as it is
        expect(page.get_by_text("Nothing is running: there is nothing to cancel.")).to_be_visible()

        page.locator("#use-tuned input").uncheck()
        clicked = time.perf_counter()
        page.locator("#run").click()
        expect(page.locator("#progress .hfu-phase")).to_contain_text(re.compile(
            "preparing data|retrain reference|unlearning with rbm|evaluating"), timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "walk-running.png"))
        expect(page.locator("#status")).to_contain_text("Done: rbm, forget class 3.", timeout=300_000)
        seconds = time.perf_counter() - clicked
        expect(page.locator("#progress .hfu-progress")).to_have_count(0)  # one display, gone when done
        expect(page.locator("#metrics")).to_contain_text("rbm (unlearned)")
        expect(page.locator("#per-class img")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "walk-done.png"), full_page=True)
        print(f"click to result (demo, RBM, digit 3): {seconds:.1f} s")

        with page.expect_download() as download:
            page.locator('#downloads a[href*="hf-unlearn-rbm-class-3.zip"]').first.click()
        archive = tmp_path / "checkpoint.zip"
        download.value.save_as(archive)
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp_path / "unzipped")
        folder = tmp_path / "unzipped" / "hf-unlearn-rbm-class-3"
        model = AutoModelForImageClassification.from_pretrained(folder)
        assert AutoImageProcessor.from_pretrained(folder) is not None
        assert model.config.id2label[3] == "3" and (folder / "report.md").read_text().count("![") == 2

        run_then_cancel(page)  # the same steps as the screenshots' (scripts/browser.py)
        expect(page.locator("#progress .hfu-progress")).to_have_count(0)
        expect(page.locator("#metrics")).not_to_contain_text("rbm (unlearned)")
        expect(page.locator("#per-class img")).to_have_count(0)
        expect(page.locator("#downloads")).not_to_contain_text(".zip")
        assert "Error" not in page.locator("#views").inner_text()  # no red pills on the panels
        page.screenshot(path=str(ARTIFACTS / "walk-cancelled.png"))

        page.locator("#short-epochs input").fill("5")
        page.locator("#short-epochs input").press("Tab")
        page.locator("#run").click()  # the next run works
        expect(page.locator("#status")).to_contain_text("Done: rbm, forget class 3.", timeout=300_000)

        # no Hub to reach: the endpoint refuses every connection
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setattr(hub_module, "_reachable", {})
        page.locator("#model input").fill("someone/not-a-model")
        page.keyboard.press("Enter")
        expect(page.locator("#dataset input")).to_have_value("")
        page.locator("#dataset input").fill("someone/not-data")
        page.keyboard.press("Enter")
        clicked = time.perf_counter()
        page.locator("#run").click()
        error = page.locator("#status .hfu-error")
        expect(error).to_be_visible(timeout=10_000)
        assert time.perf_counter() - clicked < 10
        text = error.inner_text()
        assert "model 'someone/not-a-model'" in text and "cannot be reached" in text and "\n" not in text.strip()
        page.screenshot(path=str(ARTIFACTS / "walk-offline.png"))
