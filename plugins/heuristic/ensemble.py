"""Ensemble plans over the candidates' stored predictions, and the script that carries one out.

Candidates keep only their outputs in the sample's format, so label metrics are combined by (weighted) vote and
probabilities and values by (weighted or rank) averages. Stacking fits a meta-model on the validation
predictions: its printed score comes from cross_val_predict, so no row is scored by a model fitted on it, and
the test predictions come from the meta-model refitted on every validation row.
"""

from __future__ import annotations

import json
import math

from core.policy import CandidateInfo, PlanRecord, TaskContext
from space.ops import parse_plan
from space.render import PredictSpec, score_lines

METHODS = ("mean", "stacking", "weighted", "rank", "top")


def ensemble_plans(ctx: TaskContext, candidates: list[CandidateInfo]) -> list[str]:
    """Every plan that applies to these candidates, in the order they are worth trying."""
    output = ctx.output_kind()
    if output == "multi" and not (ctx.task_type == "regression" or ctx.proba):
        return []  # several label columns: no per-column vote here
    names = [c.name for c in _best_first(ctx, candidates)]
    vote = output == "label"
    plans = [
        ("mean", "Majority vote of the candidates' labels (ties go to the better candidate)." if vote else
         "Average the candidates' predictions with equal weights."),
        ("stacking", "Stack: a " + ("ridge regression" if output == "value" else "logistic regression")
         + " meta-model on the candidates' validation predictions, scored out-of-fold with 5-fold "
           "cross_val_predict and refitted on all validation rows for the test predictions."),
        ("weighted", ("Vote" if vote else "Average") + " with weights proportional to each candidate's "
         f"validation {ctx.metric} ({'higher' if ctx.maximize else 'lower'} is better)."),
    ]
    if output == "multi":  # one meta-model per target is not written here: averages only
        plans = [p for p in plans if p[0] != "stacking"]
    if ctx.metric == "roc_auc":
        plans.append(("rank", ("Average the candidates' ranks instead of their probabilities (ROC AUC reads only "
                               "the order, and ranks put differently calibrated models on one scale).")))
    if len(candidates) >= 3:
        keep = math.ceil(len(candidates) / 2)
        plans.append(("top", f"{'Vote' if vote else 'Average'} over the best {keep} candidates only."))
    out = []
    for method, text in plans:
        members = names[: math.ceil(len(names) / 2)] if method == "top" else names
        out.append(f"{text} (op: ensemble {json.dumps({'method': method, 'members': members}, sort_keys=True)})")
    return out


def next_ensemble_plan(ctx: TaskContext, candidates: list[CandidateInfo], history: list[PlanRecord]) -> str | None:
    if len(candidates) < 2:
        return None
    tried = {h.plan for h in history}
    tried_methods = {p[1].get("method") for p in map(parse_plan, tried) if p and p[0] == "ensemble"}
    for plan in ensemble_plans(ctx, candidates):
        parsed = parse_plan(plan)
        if plan not in tried and parsed and parsed[1]["method"] not in tried_methods:
            return plan
    return None


def _best_first(ctx: TaskContext, candidates: list[CandidateInfo]) -> list[CandidateInfo]:
    return sorted(candidates, key=lambda c: -c.score if ctx.maximize else c.score)


def ensemble_script(ctx: TaskContext, candidates: list[CandidateInfo], plan: str) -> str | None:
    """The script for an ensemble plan (None: not a plan of ours, or it names unknown candidates)."""
    parsed = parse_plan(plan)
    if parsed is None or parsed[0] != "ensemble" or parsed[1].get("method") not in METHODS:
        return None
    method = parsed[1]["method"]
    scores = {c.name: c.score for c in _best_first(ctx, candidates)}
    members = [m for m in parsed[1].get("members", list(scores)) if m in scores] or list(scores)
    if len(members) < 2 and method != "top":
        return None
    output = ctx.output_kind()
    if method == "rank" and output not in ("positive", "wide", "multi"):
        return None
    if (output, method if method in ("rank", "stacking") else "mean") not in _BODIES:
        return None
    weights = _weights(ctx, [scores[m] for m in members]) if method == "weighted" else [1.0] * len(members)
    head = f'''"""Ensemble for task {ctx.name!r}: {method} of {', '.join(members)} (written by mlestar's heuristic policy).

Reads each candidate's ./input/candidates/<name>/val_predictions.csv and submission.csv, and ./input/valid.csv for
the validation truth; writes val_predictions.csv and submission.csv in the sample's format.
"""

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

SEED = {ctx.seed}
ID, TARGET = {ctx.id_column!r}, {ctx.target!r}
TARGETS = {list(ctx.targets)!r}  # several columns to predict (empty: TARGET alone)
PRED_COLUMNS = {list(ctx.prediction_columns)!r}
MEMBERS = {members!r}  # best first
WEIGHTS = {[round(w, 6) for w in weights]!r}

valid = pd.read_csv("./input/valid.csv")
sample = pd.read_csv("./input/sample_submission.csv")
y_valid = valid[TARGETS] if TARGETS else valid[TARGET]
CLASSES = np.sort(pd.unique(np.ravel(y_valid.to_numpy())))  # only the label order is used: the positive class is the larger label


def load(name, file, ids):
    """A candidate's prediction columns, rows in the order of ``ids``."""
    frame = pd.read_csv(f"./input/candidates/{{name}}/{{file}}")
    frame.index = frame[ID].astype(str)
    return frame.reindex(ids.astype(str).to_numpy())[PRED_COLUMNS].reset_index(drop=True)


val_parts = [load(name, "val_predictions.csv", valid[ID]) for name in MEMBERS]
test_parts = [load(name, "submission.csv", sample[ID]) for name in MEMBERS]
val_predictions = pd.DataFrame({{ID: valid[ID].to_numpy()}})
submission = pd.DataFrame({{ID: sample[ID].to_numpy()}})
'''
    body = _BODIES[(output, method)] if (output, method) in _BODIES else _BODIES[(output, "mean")]
    if "to_scale" in body:
        body = (_LOG_SCALE if ctx.metric == "rmsle" else _SAME_SCALE) + "\n\n" + body.strip("\n")
    score = PredictSpec(metric=ctx.metric, output=output)
    lines = score_lines(ctx, score)
    tail = "\n".join([*lines, 'val_predictions.to_csv("val_predictions.csv", index=False)',
                      'submission.to_csv("submission.csv", index=False)',
                      'print(f"Final Validation Performance: {score:.6f}")'])
    clip = "np.clip(values, 0, None)" if ctx.metric == "rmsle" else "values"
    return head + "\n" + body.strip("\n").replace("__CLIPPED__", clip) + "\n\n" + tail + "\n"


def _weights(ctx: TaskContext, scores: list[float]) -> list[float]:
    """Weights from validation scores: proportional to the score when higher is better, to its inverse when lower
    is better (scores at or below zero get a small floor)."""
    if ctx.maximize:
        raw = [max(s, 1e-6) for s in scores]
    else:
        raw = [1.0 / max(s, 1e-9) for s in scores]
    total = sum(raw)
    return [r / total for r in raw]


_VOTE = '''
def vote(parts, weights):
    """Weighted vote per row; ties go to the label of the earlier (better) candidate."""
    labels = pd.concat([p[PRED_COLUMNS[0]] for p in parts], axis=1, ignore_index=True)
    out = []
    for row in labels.itertuples(index=False):
        tally = {}
        for label, weight in zip(row, weights):
            tally[label] = tally.get(label, 0.0) + weight
        out.append(max(tally, key=tally.get))
    return out


val_predictions[PRED_COLUMNS[0]] = vote(val_parts, WEIGHTS)
submission[PRED_COLUMNS[0]] = vote(test_parts, WEIGHTS)
'''

_STACK_LABELS = '''
# Features: each candidate's label, one-hot over the labels seen in the validation predictions.
def one_hot(parts, labels):
    return np.column_stack([(p[PRED_COLUMNS[0]].astype(str).to_numpy() == label).astype(float)
                            for p in parts for label in labels])


labels = sorted({str(v) for p in val_parts for v in p[PRED_COLUMNS[0]]})
X_val, X_test = one_hot(val_parts, labels), one_hot(test_parts, labels)
meta = LogisticRegression(C=1.0, max_iter=2000)
counts = y_valid.value_counts()
folds = (StratifiedKFold(n_splits=int(min(5, counts.min())), shuffle=True, random_state=SEED) if counts.min() >= 2
         else KFold(n_splits=5, shuffle=True, random_state=SEED))
# Out-of-fold: every validation row is predicted by a meta-model that never saw it.
val_predictions[PRED_COLUMNS[0]] = cross_val_predict(meta, X_val, y_valid, cv=folds)
submission[PRED_COLUMNS[0]] = meta.fit(X_val, y_valid).predict(X_test)
'''

_AVERAGE = '''
def average(parts, weights):
    return sum(w * to_scale(p.to_numpy(dtype=float)) for w, p in zip(weights, parts)) / sum(weights)


for frame, parts in ((val_predictions, val_parts), (submission, test_parts)):
    values = from_scale(average(parts, WEIGHTS))
__NORMALISE__    frame[PRED_COLUMNS] = __CLIPPED__
'''

_RANK = '''
def rank_average(parts, weights):
    """Each candidate's column turned into ranks scaled to [0, 1], then averaged."""
    ranked = [p.rank(pct=True).to_numpy(dtype=float) for p in parts]
    return sum(w * r for w, r in zip(weights, ranked)) / sum(weights)


for frame, parts in ((val_predictions, val_parts), (submission, test_parts)):
    values = rank_average(parts, WEIGHTS)
__NORMALISE__    frame[PRED_COLUMNS] = values
'''

_STACK_POSITIVE = '''
# Features: each candidate's probability as a logit; the meta-model learns how far to trust each.
def logits(parts):
    p = np.clip(np.column_stack([part[PRED_COLUMNS[0]].to_numpy(dtype=float) for part in parts]), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


X_val, X_test = logits(val_parts), logits(test_parts)
y_meta = (y_valid == CLASSES[-1]).astype(int)
meta = LogisticRegression(C=1.0, max_iter=2000)
folds = StratifiedKFold(n_splits=int(max(2, min(5, y_meta.value_counts().min()))), shuffle=True, random_state=SEED)
# Out-of-fold: every validation row is predicted by a meta-model that never saw it.
val_predictions[PRED_COLUMNS[0]] = cross_val_predict(meta, X_val, y_meta, cv=folds, method="predict_proba")[:, 1]
submission[PRED_COLUMNS[0]] = meta.fit(X_val, y_meta).predict_proba(X_test)[:, 1]
'''

_STACK_WIDE = '''
# Features: every candidate's class probabilities as logs; the target is the class's column position.
def log_probabilities(parts):
    return np.log(np.clip(np.column_stack([p.to_numpy(dtype=float) for p in parts]), 1e-6, 1.0))


X_val, X_test = log_probabilities(val_parts), log_probabilities(test_parts)
y_meta = np.array([PRED_COLUMNS.index(str(label)) for label in y_valid])
meta = LogisticRegression(C=1.0, max_iter=2000)
smallest = int(pd.Series(y_meta).value_counts().min())
folds = (StratifiedKFold(n_splits=min(5, smallest), shuffle=True, random_state=SEED) if smallest >= 2
         else KFold(n_splits=5, shuffle=True, random_state=SEED))


def spread(probabilities, classes):
    """Meta-model probabilities placed in their columns (a class absent from the validation rows gets 0)."""
    out = np.zeros((len(probabilities), len(PRED_COLUMNS)))
    out[:, np.asarray(classes, dtype=int)] = probabilities
    return out


# Out-of-fold: every validation row is predicted by a meta-model that never saw it.
val_predictions[PRED_COLUMNS] = spread(cross_val_predict(meta, X_val, y_meta, cv=folds, method="predict_proba"),
                                       np.unique(y_meta))
meta.fit(X_val, y_meta)
submission[PRED_COLUMNS] = spread(meta.predict_proba(X_test), meta.classes_)
'''

_STACK_VALUES = '''
X_val = to_scale(np.column_stack([p[PRED_COLUMNS[0]].to_numpy(dtype=float) for p in val_parts]))
X_test = to_scale(np.column_stack([p[PRED_COLUMNS[0]].to_numpy(dtype=float) for p in test_parts]))
y_meta = to_scale(y_valid.to_numpy(dtype=float))
meta = Ridge(alpha=1.0)
folds = KFold(n_splits=5, shuffle=True, random_state=SEED)
# Out-of-fold: every validation row is predicted by a meta-model that never saw it.
values = from_scale(cross_val_predict(meta, X_val, y_meta, cv=folds))
val_predictions[PRED_COLUMNS[0]] = __CLIPPED__
values = from_scale(meta.fit(X_val, y_meta).predict(X_test))
submission[PRED_COLUMNS[0]] = __CLIPPED__
'''

_LOG_SCALE = '''
# RMSLE measures errors of log1p(values), so the predictions are combined on that scale.
def to_scale(values):
    return np.log1p(np.clip(values, 0, None))


def from_scale(values):
    return np.expm1(values)
'''

_SAME_SCALE = '''
# The metric reads the values as they are, so they are combined as they are.
def to_scale(values):
    return values


def from_scale(values):
    return values
'''

_NORMALISE_ROWS = "    values = values / np.clip(values.sum(axis=1, keepdims=True), 1e-12, None)  # rows sum to 1\n"

_BODIES = {
    ("label", "mean"): _VOTE, ("label", "weighted"): _VOTE, ("label", "top"): _VOTE,
    ("label", "stacking"): _STACK_LABELS,
    ("positive", "mean"): _AVERAGE.replace("__NORMALISE__", ""),
    ("positive", "rank"): _RANK.replace("__NORMALISE__", ""),
    ("positive", "stacking"): _STACK_POSITIVE,
    ("wide", "mean"): _AVERAGE.replace("__NORMALISE__", _NORMALISE_ROWS),
    ("wide", "rank"): _RANK.replace("__NORMALISE__", _NORMALISE_ROWS),
    ("wide", "stacking"): _STACK_WIDE,
    ("value", "mean"): _AVERAGE.replace("__NORMALISE__", ""),
    ("value", "stacking"): _STACK_VALUES,
    ("multi", "mean"): _AVERAGE.replace("__NORMALISE__", ""),  # values, or each target's probability
    ("multi", "rank"): _RANK.replace("__NORMALISE__", ""),
}
