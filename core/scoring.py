"""The one yardstick: the framework scores every script's validation predictions with the task's metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.metrics import Metric
from core.policy import TaskContext


def score_predictions(pred_path: Path, truth: Path | pd.DataFrame, ctx: TaskContext,
                      metric: Metric) -> tuple[float | None, str]:
    """(score, "") for valid predictions, or (None, what is wrong with them); ``truth``: the truth file, or its rows
    as read before any script ran (a run keeps them: see graphs.context.RunContext.truth_rows)."""
    pairs, problem = prediction_arrays(pred_path, truth, ctx, metric)
    if pairs is None:
        return None, problem
    scores = []
    for target, (y_true, y_pred) in pairs.items():
        try:
            score = float(metric.fn(y_true, y_pred))
        except Exception as exc:  # noqa: BLE001 - a metric that cannot read these predictions
            problem = f"cannot score val_predictions.csv with {metric.name}: {type(exc).__name__}: {exc}"
            return None, f"{target}: {problem}" if ctx.targets else problem
        if not np.isfinite(score):
            problem = f"{metric.name} of the validation predictions is not finite"
            return None, f"{target}: {problem}" if ctx.targets else problem
        scores.append(score)
    # several targets: each prediction column is scored on its own and the scores averaged
    return float(np.mean(scores)), ""


def prediction_arrays(pred_path: Path, truth: Path | pd.DataFrame, ctx: TaskContext,
                      metric: Metric) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]] | None, str]:
    """Per target, (truth, predictions) as the metric reads them, row by row in the truth's order; or (None, what is
    wrong with the predictions)."""
    try:
        pred = pd.read_csv(pred_path)
    except Exception as exc:  # noqa: BLE001 - whatever the script wrote
        return None, f"val_predictions.csv is not a readable CSV: {type(exc).__name__}: {exc}"
    truth = truth if isinstance(truth, pd.DataFrame) else pd.read_csv(truth)
    expected = [ctx.id_column, *ctx.prediction_columns]
    if [str(c) for c in pred.columns] != expected:
        return None, f"val_predictions.csv has columns {list(pred.columns)[:8]}, expected {expected[:8]}"
    pred_ids = pd.Index(pred[ctx.id_column].astype(str))
    if pred_ids.duplicated().any():
        return None, "val_predictions.csv has duplicate ids"
    rows = pred_ids.get_indexer(truth[ctx.id_column].astype(str))  # each truth row's prediction row, -1 if none
    missing = int((rows < 0).sum())
    if missing:
        return None, f"val_predictions.csv lacks {missing} of the {len(truth)} validation ids"
    pred = pred.iloc[rows]  # in the truth's row order; what follows reads both by position
    if ctx.targets:  # one prediction column per target
        columns = {target: [target] for target in ctx.targets}
    else:
        columns = {ctx.target: list(ctx.prediction_columns)}
    pairs = {}
    for target, cols in columns.items():
        if pred[cols].isna().any().any():
            return None, "val_predictions.csv has missing values"
        arrays, problem = _column_arrays(truth[target], pred[cols], ctx, metric)
        if arrays is None:
            return None, f"{target}: {problem}" if ctx.targets else problem
        pairs[target] = arrays
    return pairs, ""


def _column_arrays(y_true: pd.Series, values: pd.DataFrame, ctx: TaskContext,
                   metric: Metric) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """One target's (truth, predictions) from its prediction column(s) (several: the wide probability format)."""
    try:
        if ctx.task_type == "regression":
            return (y_true.astype(float).to_numpy(), values.iloc[:, 0].astype(float).to_numpy()), ""
        if metric.proba:
            y_true = y_true.astype(str).to_numpy()
            if values.shape[1] > 1:  # wide format: one probability column per class
                order = [str(c) for c in ctx.prediction_columns]
                codes = np.array([order.index(v) if v in order else -1 for v in y_true])
                if (codes < 0).any():
                    return None, "validation labels missing from the probability columns"
                return (codes, values.astype(float).to_numpy()), ""
            positive = ctx.classes[-1] if ctx.classes else "1"
            y_true = (np.array([_canonical(v) for v in y_true]) == _canonical(positive)).astype(int)
            return (y_true, values.iloc[:, 0].astype(float).to_numpy()), ""
        y_pred = np.array([_canonical(v) for v in values.iloc[:, 0].astype(str).to_numpy()])
        return (np.array([_canonical(v) for v in y_true.astype(str).to_numpy()]), y_pred), ""
    except Exception as exc:  # noqa: BLE001 - a metric that cannot read these predictions
        return None, f"cannot score val_predictions.csv with {metric.name}: {type(exc).__name__}: {exc}"


def _canonical(label: str) -> str:
    """'1.0' and '1' name the same class: scripts often write integer labels as floats."""
    try:
        f = float(label)
        return str(int(f)) if f.is_integer() else label
    except ValueError:
        return label
