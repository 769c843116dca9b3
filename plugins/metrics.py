"""Built-in metrics (scikit-learn implementations), registered like any plugin's."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from core.hookspecs import hookimpl
from core.metrics import Metric


def _rmse(y_true, y_pred) -> float:
    return float(np.sqrt(skm.mean_squared_error(y_true, y_pred)))


def _rmsle(y_true, y_pred) -> float:
    # Negative predictions make log1p undefined; clip as Kaggle's graders do.
    return float(np.sqrt(skm.mean_squared_log_error(y_true, np.clip(y_pred, 0, None))))


def _f1(y_true, y_pred) -> float:
    average = "binary" if len(np.unique(y_true)) <= 2 else "macro"
    if average == "binary":
        labels = np.unique(y_true)  # sorted, as the framework orders classes: the last one is positive
        return float(skm.f1_score(y_true, y_pred, average="binary", pos_label=labels[-1]))
    return float(skm.f1_score(y_true, y_pred, average="macro"))


def _roc_auc(y_true, y_pred) -> float:
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        return float(skm.roc_auc_score(y_true, y_pred, multi_class="ovr"))
    return float(skm.roc_auc_score(y_true, y_pred.ravel()))


def _logloss(y_true, y_pred) -> float:
    y_pred = np.clip(np.asarray(y_pred, dtype=float), 1e-15, 1 - 1e-15)
    labels = list(range(y_pred.shape[1])) if y_pred.ndim == 2 else [0, 1]  # a class absent from y_true still counts
    return float(skm.log_loss(y_true, y_pred, labels=labels))


BUILTIN = [
    Metric("accuracy", lambda t, p: float(skm.accuracy_score(t, p)), "maximize", "classification",
           description="share of correct labels"),
    Metric("balanced_accuracy", lambda t, p: float(skm.balanced_accuracy_score(t, p)), "maximize", "classification",
           description="mean recall over classes"),
    Metric("f1", _f1, "maximize", "classification", description="F1 (binary on the larger label, else macro)"),
    Metric("roc_auc", _roc_auc, "maximize", "classification", proba=True,
           description="area under the ROC curve from predicted probabilities"),
    Metric("logloss", _logloss, "minimize", "classification", proba=True, description="cross-entropy of probabilities"),
    Metric("rmse", _rmse, "minimize", "regression", description="root mean squared error"),
    Metric("rmsle", _rmsle, "minimize", "regression", description="root mean squared log error"),
    Metric("mae", lambda t, p: float(skm.mean_absolute_error(t, p)), "minimize", "regression",
           description="mean absolute error"),
    Metric("r2", lambda t, p: float(skm.r2_score(t, p)), "maximize", "regression", description="coefficient of determination"),
]


@hookimpl
def register_metrics(register):
    for metric in BUILTIN:
        register(metric)
