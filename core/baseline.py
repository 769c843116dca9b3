"""The constant-prediction baseline: what the submission falls back to when no script produced a valid one, so a
run always leaves a well-formed submission (and says plainly that it is only a baseline)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.policy import TaskContext


def constant_submission(input_dir: Path, ctx: TaskContext) -> pd.DataFrame:
    """The sample submission filled with the training prior: the majority class, the class shares for
    probability columns, or the median for regression."""
    train = pd.read_csv(input_dir / "train.csv")
    sample = pd.read_csv(input_dir / "sample_submission.csv")
    out = sample.copy()
    if ctx.targets:  # one column per target, each filled as a task of its own would be
        for target in ctx.targets:
            out[target] = _constants(train[target].dropna(), ctx.for_target(target))[target]
        return out
    for col, value in _constants(train[ctx.target].dropna(), ctx).items():
        out[col] = value
    return out


def _constants(y: pd.Series, ctx: TaskContext) -> dict:
    if ctx.task_type == "regression":
        values = {c: float(y.median()) for c in ctx.prediction_columns}
    elif ctx.proba and len(ctx.prediction_columns) > 1:
        shares = y.astype(str).value_counts(normalize=True)
        values = {c: float(shares.get(str(c), 0.0)) for c in ctx.prediction_columns}
    elif ctx.proba:
        positive = ctx.classes[-1] if ctx.classes else "1"
        values = {ctx.prediction_columns[0]: float((y.astype(str) == positive).mean())}
    else:
        values = {ctx.prediction_columns[0]: y.mode().iloc[0]}
    return values
