"""The membership-inference picture of a run: how confident each model is on forget, retain and test rows.

The report draws its own per-class chart (:meth:`hf_unlearn.report.UnlearnReport.plot_per_class`) from metrics;
this one needs a result's outputs, so it lives beside the result, not in the report. Both share one height.
"""

from __future__ import annotations

import io
from typing import Any

from .report import PLOT_DPI, PLOT_HEIGHT

#: the models the histograms show, in order, with the panel titles
PANELS = {"original": "untouched", "unlearned": "unlearned", "retrain": "Retrain (the goal)"}


def mia_histogram(result: Any) -> bytes | None:
    """True-label confidence of the forget, retain and test rows under the untouched, unlearned and Retrain
    models (the feature a confidence-based membership-inference attack reads): forgetting worked when the
    unlearned model's forget histogram looks like Retrain's. The PNG's bytes (the checkpoint's ``mia.png``), or None
    when no model has confidences to show."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = [k for k in PANELS if k in result.evaluations and _has_confidences(result.evaluations[k])]
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(2.5 * len(shown) + 1.6, PLOT_HEIGHT), sharey=True,
                             squeeze=False)
    bins = np.linspace(0, 1, 26)
    for ax, key in zip(axes[0], shown, strict=True):
        ev = result.evaluations[key]
        for split, colour in (("forget", "#d62728"), ("retain", "#1f77b4"), ("test", "#2ca02c")):
            ax.hist(ev.outputs[split].true_prob, bins=bins, alpha=0.5, density=True, label=split, color=colour)
        ax.set_title(PANELS[key], fontsize=10)
        ax.set_xlabel("confidence in the true label")
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle("Confidence on forget, retain and test rows", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=PLOT_DPI, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _has_confidences(evaluation: Any) -> bool:
    try:
        return all(len(evaluation.outputs[s].true_prob) > 0 for s in ("forget", "retain", "test"))
    except (KeyError, AttributeError, TypeError):
        return False
