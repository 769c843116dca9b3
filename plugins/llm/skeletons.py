"""Short scripts that already keep the script contract for a task, shown in the prompts that write a script from
scratch: the model adapts working input/output code instead of inventing it (small models copy well and invent
badly), and a large model sees the contract as code."""

from __future__ import annotations

from core.policy import CandidateInfo, TaskContext

# the framework scores val_predictions.csv itself; the printed line is a cross-check, so these mirror its metrics
_LABEL_SCORES = {
    "accuracy": "metrics.accuracy_score(truth, pred[PRED_COLUMNS[0]].astype(str))",
    "balanced_accuracy": "metrics.balanced_accuracy_score(truth, pred[PRED_COLUMNS[0]].astype(str))",
    "f1": "metrics.f1_score(truth, pred[PRED_COLUMNS[0]].astype(str), average='macro')",
}
_VALUE_SCORES = {
    "rmse": "metrics.mean_squared_error(truth, pred[PRED_COLUMNS[0]]) ** 0.5",
    "rmsle": "metrics.mean_squared_log_error(truth, pred[PRED_COLUMNS[0]].clip(lower=0)) ** 0.5",
    "mae": "metrics.mean_absolute_error(truth, pred[PRED_COLUMNS[0]])",
    "r2": "metrics.r2_score(truth, pred[PRED_COLUMNS[0]])",
}
_POSITIVE_SCORES = {
    "roc_auc": "metrics.roc_auc_score(truth == POSITIVE, pred[PRED_COLUMNS[0]])",
    "logloss": "metrics.log_loss(truth == POSITIVE, pred[PRED_COLUMNS[0]], labels=[False, True])",
}
_WIDE_SCORES = {
    "roc_auc": "metrics.roc_auc_score(truth, pred[PRED_COLUMNS], multi_class='ovr', labels=PRED_COLUMNS)",
    "logloss": "metrics.log_loss(truth, pred[PRED_COLUMNS], labels=PRED_COLUMNS)",
}


def score_function(ctx: TaskContext) -> str:
    """``def validation_score(pred)``: the task's metric of the validation predictions (as the framework reads them)."""
    kind = ctx.output_kind()
    table = {"label": _LABEL_SCORES, "value": _VALUE_SCORES, "positive": _POSITIVE_SCORES, "wide": _WIDE_SCORES}[kind]
    expression = table.get(ctx.metric)
    truth = "valid[TARGET].astype(float)" if kind == "value" else "valid[TARGET].astype(str)"
    lines = ["def validation_score(pred):", f'    """{ctx.metric} of the validation predictions."""',
             f"    truth = {truth}"]
    if expression is None:
        lines.append(f"    return float('nan')  # compute {ctx.metric} here")
    else:
        lines.append(f"    return float({expression})")
    return "\n".join(lines)


def _head(ctx: TaskContext) -> list[str]:
    lines = [f"ID, TARGET = {ctx.id_column!r}, {ctx.target!r}",
             f"PRED_COLUMNS = {list(ctx.prediction_columns)!r}"]
    if ctx.output_kind() == "positive":
        lines.append(f"POSITIVE = {(ctx.classes[-1] if ctx.classes else '1')!r}  # the class whose probability is "
                     f"predicted")
    return lines


def initial_skeleton(ctx: TaskContext, max_columns: int = 60) -> str:
    """A complete baseline (median/one-hot preparation, a linear model) for ``ctx``; its estimator is the line to
    change."""
    numeric = [c.name for c in ctx.columns if c.dtype == "numeric"][:max_columns]
    categorical = [c.name for c in ctx.columns if c.dtype in ("categorical", "boolean")][:max_columns]
    kind = ctx.output_kind()
    estimator = ("Ridge(alpha=1.0)", "from sklearn.linear_model import Ridge") if kind == "value" else \
        ("LogisticRegression(max_iter=1000)", "from sklearn.linear_model import LogisticRegression")
    if kind in ("label", "value"):
        predict = ["def predict(frame):", "    return model.predict(frame[FEATURES])"]
    elif kind == "positive":
        predict = ["def predict(frame):", "    classes = [str(c) for c in model.classes_]",
                   "    return model.predict_proba(frame[FEATURES])[:, classes.index(POSITIVE)]"]
    else:
        predict = ["def predict(frame):", "    classes = [str(c) for c in model.classes_]",
                   "    proba = pd.DataFrame(model.predict_proba(frame[FEATURES]), columns=classes)",
                   "    return proba.reindex(columns=PRED_COLUMNS, fill_value=0.0).to_numpy()"]
    return "\n".join([
        "import numpy as np",
        "import pandas as pd",
        "from sklearn import metrics",
        "from sklearn.compose import ColumnTransformer",
        "from sklearn.impute import SimpleImputer",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import OneHotEncoder",
        estimator[1],
        "",
        *_head(ctx),
        f"NUMERIC = {numeric!r}",
        f"CATEGORICAL = {categorical!r}",
        "FEATURES = NUMERIC + CATEGORICAL",
        "",
        'train = pd.read_csv("./input/train.csv")',
        'valid = pd.read_csv("./input/valid.csv")',
        'test = pd.read_csv("./input/test.csv")',
        "for frame in (train, valid, test):",
        "    frame[CATEGORICAL] = frame[CATEGORICAL].astype(str)",
        "",
        "prepare = ColumnTransformer([",
        '    ("numeric", SimpleImputer(strategy="median"), NUMERIC),',
        '    ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),',
        "])",
        f"model = make_pipeline(prepare, {estimator[0]})  # the model: change this estimator",
        "model.fit(train[FEATURES], train[TARGET])  # fitted on train.csv rows only",
        "",
        "",
        *predict,
        "",
        "",
        score_function(ctx),
        "",
        "",
        "val_predictions = pd.DataFrame({ID: valid[ID].to_numpy()})",
        "val_predictions[PRED_COLUMNS] = np.asarray(predict(valid)).reshape(len(valid), -1)",
        "submission = pd.DataFrame({ID: test[ID].to_numpy()})",
        "submission[PRED_COLUMNS] = np.asarray(predict(test)).reshape(len(test), -1)",
        'val_predictions.to_csv("val_predictions.csv", index=False)',
        'submission.to_csv("submission.csv", index=False)',
        'print(f"Final Validation Performance: {validation_score(val_predictions):.6f}")',
        "",
    ])


def ensemble_skeleton(ctx: TaskContext, candidates: list[CandidateInfo]) -> str:
    """A complete ensemble script (equal-weight vote or mean) over the candidates' stored predictions; its
    ``combine`` is the function to change."""
    label = ctx.output_kind() == "label"
    combine = (["def combine(parts):",
                '    """Majority vote of the labels (when all differ: the first candidate\'s)."""',
                "    votes = pd.concat([p[PRED_COLUMNS[0]].astype(str) for p in parts], axis=1, ignore_index=True)",
                "    return votes.mode(axis=1)[0].where(votes.nunique(axis=1) < len(parts), votes[0])"]
               if label else
               ["def combine(parts):", '    """Equal-weight mean of the predicted values."""',
                "    return sum(p[PRED_COLUMNS].to_numpy(dtype=float) for p in parts) / len(parts)"])
    return "\n".join([
        "import numpy as np",
        "import pandas as pd",
        "from sklearn import metrics",
        "",
        *_head(ctx),
        f"CANDIDATES = {[c.name for c in candidates]!r}",
        "",
        'valid = pd.read_csv("./input/valid.csv")',
        'sample = pd.read_csv("./input/sample_submission.csv")',
        "",
        "",
        "def load(name, file, ids):",
        '    frame = pd.read_csv(f"./input/candidates/{name}/{file}").set_index(ID)',
        "    return frame.reindex(ids.to_numpy())[PRED_COLUMNS].reset_index(drop=True)",
        "",
        "",
        *combine,
        "",
        "",
        score_function(ctx),
        "",
        "",
        'val_parts = [load(name, "val_predictions.csv", valid[ID]) for name in CANDIDATES]',
        'test_parts = [load(name, "submission.csv", sample[ID]) for name in CANDIDATES]',
        "val_predictions = pd.DataFrame({ID: valid[ID].to_numpy()})",
        "val_predictions[PRED_COLUMNS] = np.asarray(combine(val_parts)).reshape(len(valid), -1)",
        "submission = pd.DataFrame({ID: sample[ID].to_numpy()})",
        "submission[PRED_COLUMNS] = np.asarray(combine(test_parts)).reshape(len(sample), -1)",
        'val_predictions.to_csv("val_predictions.csv", index=False)',
        'submission.to_csv("submission.csv", index=False)',
        'print(f"Final Validation Performance: {validation_score(val_predictions):.6f}")',
        "",
    ])
