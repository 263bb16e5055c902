"""docs/extending.md runs as written: every Python block, in order, and what each example claims holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture()
def clean_registries():
    """Whatever the page registers is removed afterwards (the other tests see the built-in registries)."""
    from hf_unlearn import forget, methods, metrics

    before = (methods.available_methods(), [m.key for m in metrics.all_metrics()], forget.available_kinds())
    yield
    for name in set(methods.available_methods()) - set(before[0]):
        methods.unregister(name)
    for key in {m.key for m in metrics.all_metrics()} - set(before[1]):
        metrics.unregister(key)
    for name in set(forget.available_kinds()) - set(before[2]):
        forget.unregister_kind(name)


def test_every_worked_example_of_the_extending_guide_runs(demo_assets, digits, clean_registries, tmp_path, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 5  # the demo, the method and its use, the metrics, the kind
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - the page's own examples

    # the method: registered, run, and only the head changed
    head = namespace["head_run"]
    assert head.report.method == "head-ft" and head.report.settings["epochs"] == 1
    changed = {n for n, p in head.model.named_parameters()
               if not (p == dict(head.original_model.named_parameters())[n]).all()}
    assert changed and all(n.startswith("classifier.") for n in changed)

    # the metrics: in the report and its table; the reference-reading one only where a reference exists
    report = namespace["measured"].report
    assert {"forget_confidence", "retrain_agreement"} <= set(report.metrics["unlearned"])
    assert report.metrics["retrain"]["retrain_agreement"] == 100.0
    assert "| forget confidence |" in report.markdown().splitlines()[0]

    # the kind: every 10th row, from the API
    forget = namespace["every_run"].report.forget
    assert forget["kind"] == "every-kth" and forget["n_forget"] == len(range(0, len(digits["train"]), 10))
    assert "every 10th row from row 0" in capsys.readouterr().out
