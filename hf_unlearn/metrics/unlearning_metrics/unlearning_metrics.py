"""Unlearning metrics as an ``evaluate`` module (UA, forget acc, RA, TA, MIA-efficacy, MIA-loss).

Load it offline with ``evaluate.load(hf_unlearn.metrics.EVALUATE_MODULE_PATH)``.
It forwards to ``hf_unlearn.metrics.core`` so the numbers match the library's.
"""

import datasets
import evaluate
import numpy as np

from hf_unlearn.metrics import core

_DESCRIPTION = """Machine-unlearning metrics over the forget, retain and test sets.
Each row is one sample: its split ("forget", "retain" or "test"), the model's
prediction, the true label, the softmax probability of the true label and the
per-sample cross-entropy loss."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class of each row.
    references (list of int): true class of each row.
    true_probs (list of float): softmax probability of the true class.
    losses (list of float): per-sample cross-entropy.
    splits (list of str): "forget", "retain" or "test" for each row.
    seed (int): seed of the MIA member draw and cross-validation (default 0).
Returns:
    ua, forget_acc, ra, ta, mia_efficacy, mia_loss (all in percent).
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

    def _compute(self, predictions, references, true_probs, losses, splits, seed=0):
        pred, ref = np.asarray(predictions), np.asarray(references)
        prob, loss, split = np.asarray(true_probs), np.asarray(losses), np.asarray(splits)
        f, r, t = split == "forget", split == "retain", split == "test"
        forget_acc = core.accuracy(pred[f], ref[f])
        return {
            "ua": 100.0 - forget_acc,
            "forget_acc": forget_acc,
            "ra": core.accuracy(pred[r], ref[r]),
            "ta": core.accuracy(pred[t], ref[t]),
            "mia_efficacy": core.mia_efficacy(prob[r], prob[t], prob[f], seed=seed),
            "mia_loss": core.mia_loss(loss[f], ref[f], loss[t], ref[t], seed=seed),
        }
