"""Screenshots of the app in headless Chromium (Debian's package, driven by Playwright): what a user sees.

Starts the app on the offline demo, then saves, in a 1400×1000 window:
``landing.png`` (the page as it opens), ``running.png`` (the one progress display, while the run goes on),
``run-results.png`` (the Unlearn view after the run), ``cancelled.png`` (the Unlearn view after Cancel),
``kind-random.png`` (the form after choosing random forgetting),
``details-indices.png`` (listed rows, with the model and dataset details open), ``run.png`` (a
finished RBM run that forgets digit 3, with the Retrain reference) and ``compare.png`` (the Compare view:
RBM, MinNorm-OG and SalUn over seeds 0, 1, 2, then the session's history listing both), ``audit-running.png``
and ``audit.png`` (the Audit view: RBM at N = 32 while it runs, with the time left, and done). ``--readme``
also copies the landing page to ``docs/app-landing.png``, the finished run's view to ``docs/app.png``, the
running and cancelled views to ``docs/app-running.png`` and ``docs/app-cancelled.png``, the comparison to
``docs/compare.png`` and the audit to ``docs/audit.png`` and ``docs/audit-running.png``.

    python scripts/screenshots.py --out test-artifacts/screens [--readme]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from browser import demo_page, run_then_cancel  # noqa: E402 - the scripts folder is not a package


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "screens")
    ap.add_argument("--readme", action="store_true", help="also copy the finished run to docs/app.png")
    args = ap.parse_args()
    from playwright.sync_api import expect

    args.out.mkdir(parents=True, exist_ok=True)
    with demo_page() as page:
        page.wait_for_timeout(1000)  # the load events' notes
        page.screenshot(path=str(args.out / "landing.png"))  # the 1400×1000 window a user first sees

        page.locator("#forget-kind").get_by_label("random").check()
        expect(page.get_by_label("random: stratified by class")).to_be_visible()
        page.screenshot(path=str(args.out / "kind-random.png"), full_page=True)
        page.locator("#forget-kind").get_by_label("indices").check()
        page.get_by_text("Model and dataset details").click()
        expect(page.get_by_label("train split")).to_be_visible()
        page.screenshot(path=str(args.out / "details-indices.png"), full_page=True)
        page.get_by_text("Model and dataset details").click()
        page.locator("#forget-kind").get_by_label("class").check()

        page.locator("#use-tuned input").uncheck()  # these screenshots show the defaults (tuned: app_tuned.py)
        page.locator("#run").click()
        expect(page.locator("#progress .hfu-phase")).to_contain_text(
            re.compile("retrain reference|unlearning with|evaluating"), timeout=60_000)
        page.locator("#views").screenshot(path=str(args.out / "running.png"))  # the display, not the form
        expect(page.locator("#metrics")).to_contain_text("retrain", timeout=300_000)
        expect(page.locator("#per-class img")).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(args.out / "run.png"), full_page=True)
        page.locator("#views").screenshot(path=str(args.out / "run-results.png"))

        run_then_cancel(page)
        page.locator("#views").screenshot(path=str(args.out / "cancelled.png"))
        page.locator("#short-epochs input").fill("5")
        page.locator("#short-epochs input").press("Tab")
        page.locator("#with-retrain input").check()

        page.get_by_label("seeds (e.g. 0,1,2; empty: the seed)").fill("0,1,2")
        page.get_by_role("tab", name="Compare methods").click()
        page.locator("#compare-run").click()
        table = page.locator("#compare-table")
        expect(table).to_contain_text("retrain (gold standard)", timeout=600_000)
        for row in ("none (untouched)", "rbm", "minnorm-og", "salun"):
            expect(table).to_contain_text(row)
        expect(page.locator("#pareto img")).to_be_visible(timeout=30_000)
        page.locator("#views").screenshot(path=str(args.out / "compare.png"))
        page.screenshot(path=str(args.out / "compare-page.png"), full_page=True)

        page.get_by_role("tab", name="Audit forgetting").click()  # RBM (the form's method), N = 32
        page.locator("#audit-run").click()
        expect(page.locator("#audit-progress")).to_contain_text(re.compile(r"about \d+ (s|min) left"),
                                                                timeout=300_000)
        page.wait_for_timeout(1500)  # the bar's own redraw
        page.locator("#views").screenshot(path=str(args.out / "audit-running.png"))
        expect(page.locator("#audit-status")).to_contain_text("Forgetting quality F =", timeout=900_000)
        expect(page.locator("#audit-hist img")).to_be_visible(timeout=30_000)
        page.locator("#views").screenshot(path=str(args.out / "audit.png"))
    if args.readme:
        shutil.copy(args.out / "landing.png", ROOT / "docs" / "app-landing.png")
        shutil.copy(args.out / "run-results.png", ROOT / "docs" / "app.png")
        shutil.copy(args.out / "running.png", ROOT / "docs" / "app-running.png")
        shutil.copy(args.out / "cancelled.png", ROOT / "docs" / "app-cancelled.png")
        shutil.copy(args.out / "compare.png", ROOT / "docs" / "compare.png")
        shutil.copy(args.out / "audit.png", ROOT / "docs" / "audit.png")
        shutil.copy(args.out / "audit-running.png", ROOT / "docs" / "audit-running.png")
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
