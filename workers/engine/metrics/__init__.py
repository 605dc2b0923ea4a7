"""Classification and regression metrics in plain numpy, with their intervals and caveats.

The definitions follow scikit-learn's (``zero_division=0``; macro averages
over the labels present in the truth or the predictions; ROC AUC from the
Mann-Whitney rank statistic with ties averaged, one-vs-rest macro AUC for
several classes) so the numbers match what users compute themselves, without
putting scikit-learn on the workers. Where scikit-learn would return a
finite stand-in for 0/0 (R² of a constant target) the value is ``None``;
where it returns 0 for 0/0 (precision of a class never predicted) the value
is kept and flagged. Every value returned is a plain Python
``int``/``float``/``str``/``None`` so the dicts serialise to JSON as they are.
"""

from workers.engine.metrics._common import to_python
from workers.engine.metrics.auc import roc_auc_binary
from workers.engine.metrics.classification import classification_metrics
from workers.engine.metrics.regression import regression_metrics

__all__ = ["classification_metrics", "regression_metrics", "roc_auc_binary", "to_python"]
