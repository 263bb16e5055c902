"""The CLI writes a loadable checkpoint and a schema-versioned report; the demo meets its bar."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from hf_unlearn import UnlearnReport, available_methods, unlearn
from hf_unlearn.cli import main
from hf_unlearn.demo import DEMO_RECIPE


def test_cli_run_writes_checkpoint_and_report(demo_assets, tmp_path, capsys):
    out = tmp_path / "forgot-3"
    code = main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--method", "ft", "--epochs", "1", "--output", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "ft (unlearned)" in printed and f"saved to {out}" in printed
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "report.json", "report.md",
            "per_class.png"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == 4 and report["method"] == "ft"
    assert report["forget"]["class_names"] == ["3"] and len(report["forget"]["forget_ids_sha256"]) == 64
    from transformers import AutoModelForImageClassification

    reloaded = AutoModelForImageClassification.from_pretrained(out)
    assert reloaded.config.id2label[3] == "3"
    # existing output is refused, not overwritten
    assert main(["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
                 "--output", str(out), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("method", [m for m in available_methods() if m not in ("retrain", "none")])
def test_every_baseline_runs_and_reports(demo_assets, method):
    result = unlearn(str(demo_assets[0]), str(demo_assets[1]), {"fraction": 0.1, "seed": 1}, method=method,
                     epochs=1, seed=0)
    r = result.report
    assert r.method == method and r.rte_s > 0
    for key in ("original", "unlearned"):
        m = r.metrics[key]
        for name in ("ua", "forget_acc", "ra", "ta", "mia_efficacy", "mia_loss"):
            assert 0.0 <= m[name] <= 100.0, (key, name, m[name])
        assert m["ua"] == pytest.approx(100 - m["forget_acc"])
        assert len(m["per_class_test_acc"]) == 10
    assert r.metrics["original"]["ta"] > 90  # the demo model is a real classifier
    orig = dict(result.original_model.named_parameters())
    assert any(not torch.equal(p, orig[n]) for n, p in result.model.named_parameters())


def test_reference_report_gives_avg_gap_and_rte_fraction(demo_assets, tmp_path):
    ref = unlearn(str(demo_assets[0]), str(demo_assets[1]), "5", method="retrain", **DEMO_RECIPE)
    ref.save(tmp_path / "retrain")
    res = unlearn(str(demo_assets[0]), str(demo_assets[1]), "5", method="ft", epochs=1,
                  reference=str(tmp_path / "retrain"))
    r = res.report
    assert r.metrics["retrain"] == ref.report.metrics["unlearned"]
    assert r.avg_gap["unlearned"] >= 0 and r.rte_fraction == pytest.approx(r.rte_s / ref.report.rte_s)
    # round trip through JSON
    back = UnlearnReport.from_dict(json.loads(r.to_json()))
    assert back.metrics == json.loads(r.to_json())["metrics"]
    assert "| ft (unlearned) |" in r.markdown() and "Avg.Gap" in r.markdown()


def test_demo_command_prints_metrics_and_retrain_forgets(demo_assets):
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "hf_unlearn.cli", "demo"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    for name in ("UA", "RA", "TA", "MIA-efficacy"):
        assert name in cols
    rows = {c[0]: c for c in ([x.strip() for x in line.strip("|").split("|")] for line in lines
                              if line.startswith("| ") and not line.startswith("| model"))}
    assert {"original", "ft (unlearned)", "retrain"} <= set(rows)
    fc = cols.index("forget-class test acc")
    assert float(rows["retrain"][fc]) <= 5.0
    assert float(rows["original"][cols.index("TA")]) > 90
