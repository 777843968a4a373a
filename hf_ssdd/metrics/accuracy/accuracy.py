"""Accuracy as an `evaluate` module shipped inside hf-ssdd: the Hub copy of `accuracy` is not reachable offline.

    >>> import evaluate
    >>> from hf_ssdd.metrics import metric_path
    >>> evaluate.load(metric_path("accuracy")).compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy: the fraction of predictions equal to their references, in [0, 1]."
_INPUTS = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): true class indices.
Returns:
    accuracy (float): fraction correct, in [0, 1].
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        return {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(references)))}
