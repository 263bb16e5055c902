"""The app's offer of tuned settings, in headless Chromium, and a run with them against the CLI's figures.

Needs a tuning of the demo in the tuned-settings store (``scripts/tune_heldout.py`` leaves one for class-wise
and random requests). Saves ``tuned-offer.png`` (the form offering the stored tuned settings beside the
defaults), ``tuned-file.png`` (the same after uploading FILE) and ``tuned-run.png`` (the finished run with
FILE's settings), then runs ``hf-unlearn run --settings FILE`` with the same request and prints both Avg.Gap
figures.

    python scripts/app_tuned.py --settings docs/results/tuning/class.json --out test-artifacts/screens
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from browser import demo_page  # noqa: E402 - the scripts folder is not a package


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", type=Path, required=True, help="the class-wise settings file tune wrote")
    ap.add_argument("--method", default="rbm")
    ap.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "screens")
    ap.add_argument("--readme", action="store_true", help="also copy the offer to docs/tuned.png")
    args = ap.parse_args()
    from playwright.sync_api import expect

    from hf_unlearn.demo import DEMO_RECIPE, ensure_demo_assets

    model, data = ensure_demo_assets()
    args.out.mkdir(parents=True, exist_ok=True)
    with demo_page() as page:
        offer = page.locator("#tuned-info")
        expect(offer).to_contain_text(f"Tuned settings for {args.method}", timeout=30_000)
        expect(offer).to_contain_text("the tuned-settings cache")
        page.screenshot(path=str(args.out / "tuned-offer.png"), full_page=True)
        # the same settings as the CLI's: the file itself, uploaded
        page.locator("#tuned-file input[type=file]").set_input_files(str(args.settings))
        expect(offer).to_contain_text(f"from {args.settings.name}", timeout=30_000)
        page.screenshot(path=str(args.out / "tuned-file.png"), full_page=True)
        page.locator("#run").click()
        status = page.locator("#status")
        expect(status).to_contain_text("Verdict", timeout=300_000)
        expect(status).to_contain_text("tuned settings")
        page.screenshot(path=str(args.out / "tuned-run.png"), full_page=True)
        app_text = status.inner_text()
        table = " ".join(page.locator("#metrics").inner_text().split())
        app_row = table[table.index("(unlearned)"):table.index(" retrain")]
    app_gap = float(re.search(r"Avg\.Gap ([0-9.]+)", app_text).group(1))
    out = Path(tempfile.mkdtemp()) / "run"
    recipe = [f"--retrain-set={k}={v}" for k, v in DEMO_RECIPE.items()]
    subprocess.run([sys.executable, "-m", "hf_unlearn.cli", "run", "--model", str(model), "--dataset", str(data),
                    "--forget-class", "3", "--method", args.method, "--settings", str(args.settings),
                    "--reference", "retrain", *recipe, "--output", str(out), "--quiet"], check=True)
    report = json.loads((out / "report.json").read_text())
    cli_gap, cli = report["avg_gap"]["unlearned"], report["metrics"]["unlearned"]
    print(f"app: Avg.Gap {app_gap:.2f}; CLI (run --settings {args.settings.name}): Avg.Gap {cli_gap:.2f}")
    print("app's row:", " ".join(app_row.split()))
    print("CLI's row:", " ".join(f"{k} {cli[k]:.2f}" for k in ("ua", "forget_acc", "ra", "ta", "mia_efficacy",
                                                               "mia_loss", "forget_class_test_acc")))
    print("settings used by the CLI:", {k: report["settings"][k] for k in report["settings"]["tuned"]["settings"]})
    if args.readme:
        shutil.copy(args.out / "tuned-offer.png", ROOT / "docs" / "tuned.png")


if __name__ == "__main__":
    main()
