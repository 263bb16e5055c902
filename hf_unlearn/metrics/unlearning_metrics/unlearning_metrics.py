"""Unlearning metrics as an ``evaluate`` module: every metric of hf-unlearn's registry its rows allow.

Load it offline with ``evaluate.load(hf_unlearn.metrics.EVALUATE_MODULE_PATH)``.
It builds the same per-split outputs an hf-unlearn evaluation builds and asks
the metric registry, so the numbers (and the list of metrics) match the library's.
"""

import datasets
import evaluate
import numpy as np

from hf_unlearn.metrics import EvalOutputs, SplitOutputs, compute_all

_DESCRIPTION = """Machine-unlearning metrics over the forget, retain and test sets.
Each row is one sample: its split ("forget", "retain", "test" or "test_forget"), the
model's prediction, the true label, the softmax probability of the true label and
the per-sample cross-entropy loss. "test" rows are those TA is measured on; for
class-wise forgetting, "test_forget" rows are the forgotten classes' test rows."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class of each row.
    references (list of int): true class of each row.
    true_probs (list of float): softmax probability of the true class.
    losses (list of float): per-sample cross-entropy.
    splits (list of str): "forget", "retain", "test" or "test_forget" for each row.
    seed (int): seed of the MIA member draw and cross-validation (default 0).
    num_classes (int): number of classes (default: the largest label + 1).
Returns:
    every registered metric these rows allow, in percent (with the built-in metrics: ua, forget_acc, ra, ta,
    mia_efficacy, mia_loss, per_class_test_acc, and forget_class_test_acc when "test_forget" rows are given);
    metrics that need the Retrain reference's outputs are not computed here.
Example:
    >>> m = evaluate.load(hf_unlearn.metrics.EVALUATE_MODULE_PATH)
    >>> m.compute(predictions=[...], references=[...], true_probs=[...], losses=[...], splits=[...])
"""

_CITATION = """@inproceedings{fan2024salun, title={SalUn}, booktitle={ICLR}, year={2024}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class UnlearningMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Value("int64"),
                "references": datasets.Value("int64"),
                "true_probs": datasets.Value("float64"),
                "losses": datasets.Value("float64"),
                "splits": datasets.Value("string"),
            }),
        )

    def _compute(self, predictions, references, true_probs, losses, splits, seed=0, num_classes=None):
        pred, ref = np.asarray(predictions), np.asarray(references)
        prob, loss, split = np.asarray(true_probs), np.asarray(losses), np.asarray(splits)

        def rows(mask):
            return SplitOutputs.from_values(ref[mask], pred[mask], prob[mask], loss[mask])

        parts = {name: rows(split == name) for name in ("forget", "retain", "test")}
        parts["test_all"] = rows((split == "test") | (split == "test_forget"))
        if (split == "test_forget").any():
            parts["test_forget"] = rows(split == "test_forget")
        classes = int(num_classes) if num_classes is not None else int(ref.max()) + 1 if ref.size else 0
        values = compute_all(EvalOutputs(parts, classes, seed))
        return {k: v for k, v in values.items() if v is not None}
