"""The benchmark, ``python -m core.bench suite.yaml``: the agent, default LightGBM, FLAML and (when installed) AutoGluon
Tabular (the last two with the agent's budget), and TF-IDF + logistic regression on text, on MLE-bench task folders
graded against their private answers. A composition root beside core/run.py, like it allowed to import from graphs."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import functools
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core import logs
from core.dataprep import PreparedData, prepare_data, saved_context
from core.errors import UserError
from core.files import write_atomic
from core.loading import installed_registry, load_with_plugins
from core.metrics import Metric
from core.policy import TaskContext
from core.scoring import prediction_arrays, score_predictions
from core.store import RunStore
from core.submission import frame_problems
from core.task import PRIVATE_MARKERS, PluginChoice, Task, read_model

ANSWERS = Path("private") / "answers.csv"
MARKER = "bench-task.json"  # marks a task folder of the output as the benchmark's own, safe to clear and rewrite
BASELINES = ("lightgbm", "flaml", "autogluon", "tfidf")
OPTIONAL = {"autogluon": ("autogluon.tabular", "autogluon")}  # baseline -> (module it needs, pyproject extra)


class SuiteError(UserError):
    """suite.yaml, a task folder it names, or a command-line choice is invalid."""


class GradeError(ValueError):
    """A submission cannot be graded: missing, unreadable, wrong columns or ids, or unscorable values."""


# --- suite.yaml -------------------------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuiteTask(_Strict):
    """One entry of ``tasks``: a competition folder (relative to suite.yaml), optionally with its own budget."""

    dir: Path
    budget: float | None = Field(None, gt=0, description="agent seconds for this task (overrides the suite's)")

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, value: Any) -> Any:
        return {"dir": value} if isinstance(value, str) else value


class Suite(_Strict):
    """The schema of suite.yaml."""

    name: str = "suite"
    budget: float = Field(600, gt=0, description="agent wall-clock seconds per task; FLAML gets the same")
    output: Path | None = Field(None, description="where results go (default: out/<name> beside suite.yaml)")
    tasks: list[SuiteTask] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str) -> str:
        if not value.strip() or any(c in value for c in "/\\"):
            raise ValueError("must be a non-empty name without slashes")
        return value.strip()


class BenchTask(BaseModel):
    """A suite entry resolved: its name (the folder's), folder, and agent budget in seconds."""

    model_config = ConfigDict(frozen=True)

    name: str
    folder: Path
    budget: float


def load_suite(path: str | Path, *, budget: float | None = None,
               only: list[str] | None = None) -> tuple[Suite, list[BenchTask], Path]:
    """Parse and check suite.yaml; returns the suite, the selected tasks and the output folder.

    ``budget`` (the command line's) overrides every task's; ``only`` keeps the named tasks, in the suite's order.
    """
    path = Path(path)
    where = str(path)
    suite = read_model(path, Suite, SuiteError, "a suite.yaml (see bench/suite.yaml)")
    if budget is not None and budget <= 0:
        raise SuiteError("--budget: must be a positive number of seconds")
    base = path.resolve().parent
    tasks = []
    for i, entry in enumerate(suite.tasks):
        folder = (base / entry.dir).resolve()
        key = f"{where}: tasks.{i}"
        if not (folder / "task.yaml").is_file():
            raise SuiteError(f"{key}: {folder} has no task.yaml; point the entry at an MLE-bench task folder")
        if not (folder / ANSWERS).is_file():
            raise SuiteError(f"{key}: {folder} has no {ANSWERS}; the grader needs the private answers")
        if any(t.name == folder.name for t in tasks):
            raise SuiteError(f"{key}: a second task named '{folder.name}'; task names (folder names) must differ")
        tasks.append(BenchTask(name=folder.name, folder=folder, budget=budget or entry.budget or suite.budget))
    if only:
        names = [t.name for t in tasks]
        for name in only:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise SuiteError(f"--tasks: no task '{name}' in {where}; {hint}tasks are: {', '.join(names)}")
        tasks = [t for t in tasks if t.name in only]
    out = (base / suite.output).resolve() if suite.output else base / "out" / suite.name
    return suite, tasks, out


# --- grading ----------------------------------------------------------------------------------------------------

def grade(submission: Path, answers: Path, ctx: TaskContext, metric: Metric) -> float:
    """The metric of ``submission`` against the private ``answers`` (id and target columns), aligned on the id.

    The submission must have the sample's columns (id, then ``ctx.prediction_columns``) and exactly the answers'
    ids, each once, with no missing values; anything else raises GradeError.
    """
    if not submission.is_file():
        raise GradeError(f"{submission.name} was not written")
    try:
        sub = pd.read_csv(submission)
    except Exception as exc:  # noqa: BLE001 - whatever the entrant wrote
        raise GradeError(f"{submission.name} is not a readable CSV: {type(exc).__name__}: {exc}") from None
    truth = pd.read_csv(answers)
    expected = truth[[ctx.id_column]].assign(**{c: 0 for c in ctx.prediction_columns})
    problems = frame_problems(sub, expected, ctx.id_column, name=submission.name)
    if problems:
        raise GradeError("; ".join(problems).replace("the sample's", "the answers'"))
    score, why = score_predictions(submission, answers, ctx, metric)
    if score is None:
        raise GradeError(why.replace("val_predictions.csv", submission.name))
    return score


RESAMPLES = 2000  # bootstrap resamples of the test rows for the paired differences


def paired_gain(pairs: list[tuple[Path, Path]], answers: Path, ctx: TaskContext, metric: Metric, *,
                resamples: int = RESAMPLES, seed: int = 0) -> dict | None:
    """The agent's gain over a baseline on the test rows (the metric's favourable direction: > 0, the agent is
    better), averaged over ``pairs`` of (agent, baseline) submissions (one per seed), with a 95% percentile interval:
    each resample draws the test rows, the same for both submissions, and with several pairs the pairs too (so the
    interval holds the seeds' spread as well as the test set's). None for several targets, or a submission that
    cannot be scored.

    A test set of a few hundred rows grades with noise of its own: the bench's contested tasks differed from the
    best baseline by 0.05-0.5% of the metric, which only an interval on the same rows can tell from that noise."""
    got = [prediction_arrays(path, answers, ctx, metric)[0] for pair in pairs for path in pair]
    if not pairs or any(g is None for g in got) or ctx.targets:
        return None
    y_true = next(iter(got[0].values()))[0]  # every submission aligned on the answers' rows
    runs = [(next(iter(ours.values()))[1], next(iter(theirs.values()))[1]) for ours, theirs in zip(got[::2], got[1::2])]
    rng = np.random.default_rng(seed)

    def mean_gain(chosen, rows) -> float:
        return float(np.mean([metric.gain(float(metric.fn(y_true[rows], ours[rows])),
                                          float(metric.fn(y_true[rows], theirs[rows])))
                              for ours, theirs in (runs[k] for k in chosen)]))

    gains = []
    with warnings.catch_warnings():  # probabilities rounded in a CSV sum to 1 only nearly: sklearn says so each time
        warnings.simplefilter("ignore")
        for _ in range(resamples):
            chosen = rng.integers(0, len(runs), len(runs)) if len(runs) > 1 else [0]
            rows = rng.integers(0, len(y_true), len(y_true))
            try:
                gains.append(mean_gain(chosen, rows))
            except ValueError:  # a resample with one class (ROC AUC): it grades nothing
                continue
        gain = mean_gain(range(len(runs)), np.arange(len(y_true)))
    real = [g for g in gains if np.isfinite(g)]
    if len(real) < resamples // 2:
        return None
    low, high = np.quantile(real, [0.025, 0.975])
    return {"gain": gain, "low": float(low), "high": float(high), "resamples": len(real), "runs": len(runs)}


def ratio(agent: float | None, baseline: float | None, metric: Metric) -> float | None:
    """Agent over baseline in the metric's favourable direction (> 1: the agent is better): agent/baseline when
    higher is better, baseline/agent when lower is; None unless both scores are positive."""
    if agent is None or baseline is None or agent <= 0 or baseline <= 0:
        return None
    return agent / baseline if metric.maximize else baseline / agent


# --- framework overhead -----------------------------------------------------------------------------------------

def framework_overhead(store_path: Path, run_id: str) -> dict:
    """Seconds of the run spent outside script executions, from the run store.

    ``script_seconds`` sums the executed (non-cached) attempts' seconds; scripts run in parallel, so the overhead
    uses ``script_busy_seconds``, the time during which at least one script was executing, and
    ``overhead = (run_seconds - script_busy_seconds) / run_seconds``, in [0, 1].
    """
    store = RunStore(store_path)
    try:
        run = next((r for r in store.runs() if r["run_id"] == run_id), None)
        attempts = [a for a in store.attempts(run_id=run_id) if not a["cached"]]
    finally:
        store.close()
    if run is None:
        raise ValueError(f"{store_path}: no run {run_id}")
    start = run["started_at"]
    end = run["finished_at"] or max([a["finished_at"] or start for a in attempts], default=start)
    spans = sorted((max(start, (a["finished_at"] or start) - (a["seconds"] or 0.0)), min(end, a["finished_at"] or start))
                   for a in attempts)
    busy, reach = 0.0, start
    for lo, hi in spans:
        lo = max(lo, reach)
        if hi > lo:
            busy += hi - lo
            reach = hi
    total = end - start
    return {"run_seconds": round(total, 2), "script_seconds": round(sum(a["seconds"] or 0.0 for a in attempts), 2),
            "script_busy_seconds": round(busy, 2),
            "overhead": round(min(1.0, max(0.0, (total - busy) / total)), 4) if total > 0 else None}


# --- baselines --------------------------------------------------------------------------------------------------

PIXELS = (16, 16)  # the size a user's first image baseline shrinks every image to: 16 x 16 x 3 = 768 features


class NotApplicable(Exception):
    """A baseline that does not apply to a task (TF-IDF without a text column): recorded as such, not an error."""


def _frames(task: Task, data: PreparedData) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.DataFrame, list[str]]:
    """Features of train.csv (id, target and image-name column dropped), the target, the test rows as read (test.csv,
    or the sample's ids when there is none), their features (own copies, for a baseline to encode in place), and the
    categorical columns. On an image task every row also gets its image's pixels (``_pixels``)."""
    ctx = data.context
    train = pd.read_csv(task.train)
    test = pd.read_csv(task.test) if task.test is not None else \
        pd.read_csv(task.sample_submission, usecols=[ctx.id_column])
    train = train[train[task.target].notna()].reset_index(drop=True)
    y = train.pop(task.target)
    image = ctx.images.column if ctx.images else None
    # the other targets of a several-target task are not in test.csv, so they are never features
    features = [c for c in train.columns if c not in (ctx.id_column, image) and c in test.columns]
    categorical = [c for c in features if not pd.api.types.is_numeric_dtype(train[c])
                   or pd.api.types.is_bool_dtype(train[c])]
    X, X_test = train[features].copy(), test[features].copy()
    if ctx.images:
        X = pd.concat([X, _pixels(train[image], data.full_dir / ctx.images.train_folder, ctx.images.suffix)], axis=1)
        X_test = pd.concat([X_test, _pixels(test[image], data.full_dir / ctx.images.test_folder, ctx.images.suffix)],
                           axis=1)
    return X, y, test, X_test, categorical


def _pixels(names: pd.Series, folder: Path, suffix: str) -> pd.DataFrame:
    """Each named image (``folder/<name><suffix>``) shrunk to ``PIXELS`` in RGB and flattened, one column per value
    (0-255); a row whose image is missing gets gaps (a column may name images for only most rows)."""
    from PIL import Image

    width, height = PIXELS
    rows = np.full((len(names), width * height * 3), np.nan, dtype=np.float32)
    for i, name in enumerate(names):
        path = folder / f"{name}{suffix}"
        if pd.notna(name) and path.is_file():
            with Image.open(path) as img:
                rows[i] = np.asarray(img.convert("RGB").resize(PIXELS), dtype=np.float32).ravel()
    return pd.DataFrame(rows, columns=[f"pixel_{i}" for i in range(rows.shape[1])], index=names.index)


def _class_codes(y: pd.Series, ctx: TaskContext) -> np.ndarray:
    """Training labels as indices into ``ctx.classes`` (the order the framework's scorer uses)."""
    index = {label: i for i, label in enumerate(ctx.classes)}
    labels = [str(v.item() if hasattr(v, "item") else v) for v in y]
    return np.array([index[label] for label in labels])


def _submission(test: pd.DataFrame, ctx: TaskContext, metric: Metric, predict, predict_proba) -> pd.DataFrame:
    """The sample's columns filled from a fitted model: values, labels, or class probabilities."""
    sub = pd.DataFrame({ctx.id_column: test[ctx.id_column]})
    if ctx.task_type == "regression":
        sub[ctx.prediction_columns[0]] = np.asarray(predict(), dtype=float)
    elif not metric.proba:
        sub[ctx.prediction_columns[0]] = [ctx.classes[int(i)] for i in predict()]
    else:
        proba = np.asarray(predict_proba(), dtype=float)
        if len(ctx.prediction_columns) == 1:  # the positive (last) class's probability, as the scorer reads it
            sub[ctx.prediction_columns[0]] = proba[:, len(ctx.classes) - 1]
        else:  # wide: one column per class, named by its label
            for col in ctx.prediction_columns:
                sub[col] = proba[:, ctx.classes.index(str(col))]
    return sub


Baseline = Callable[..., tuple[pd.DataFrame, dict]]


def per_target(fit: Baseline) -> Baseline:
    """``fit`` for any task: with several targets, once per target (on views of the task and its data that predict
    that target alone, each with an even share of the budget and its own work folder), its prediction columns
    assembled into one submission with every target's; ``info`` is then {"targets": each fit's by target}."""
    @functools.wraps(fit)
    def fit_each(task: Task, data: PreparedData, metric: Metric, budget: float,
                 work: Path | None = None) -> tuple[pd.DataFrame, dict]:
        ctx = data.context
        if not ctx.targets:
            return fit(task, data, metric, budget, work)
        sub, info = None, {}
        for target in ctx.targets:
            one = task.model_copy(update={"target": target, "targets": (target,), "prediction_columns": (target,)})
            part, info[target] = fit(one, dataclasses.replace(data, context=ctx.for_target(target)), metric,
                                     budget / len(ctx.targets), None if work is None else work / target)
            sub = part[[ctx.id_column]].copy() if sub is None else sub
            sub[target] = part[target].to_numpy()  # every fit predicts the same test rows in the same order
        return sub, {"targets": info}  # one key: a target named like an entry's own keys cannot clobber them
    return fit_each


@per_target
def lightgbm_baseline(task: Task, data: PreparedData, metric: Metric, budget: float,
                      work: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """LGBMClassifier / LGBMRegressor with default parameters on ordinal-encoded categoricals (on an image task, on
    each image's 16 x 16 RGB pixels: the pixel-feature LightGBM); ``budget`` and ``work`` unused."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    ctx = data.context
    X, y, test, X_test, categorical = _frames(task, data)
    _ordinal_codes(X, X_test, categorical)
    X, X_test = X.astype(float), X_test.astype(float)
    if ctx.task_type == "regression":
        model = LGBMRegressor(verbose=-1).fit(X, y.astype(float))
    else:
        model = LGBMClassifier(verbose=-1).fit(X, _class_codes(y, ctx))
    proba = getattr(model, "predict_proba", None)
    return _submission(test, ctx, metric, lambda: model.predict(X_test),
                       lambda: _spread(proba(X_test), model.classes_, len(ctx.classes))), {}


@per_target
def flaml_baseline(task: Task, data: PreparedData, metric: Metric, budget: float,
                   work: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """FLAML AutoML searching for ``budget`` seconds, optimising the task's own metric on its own validation, on the
    columns LightGBM gets (an image task's pixels too); it runs in ``work`` (a temporary folder when None), where
    CatBoost leaves the folders of fits the budget cut."""
    try:
        from flaml import AutoML
    except ImportError:
        raise UserError("the FLAML baseline needs flaml with xgboost: pip install -e '.[bench]'") from None

    ctx = data.context
    X, y, test, X_test, categorical = _frames(task, data)
    # FLAML drops a category column whose every value differs, as a free-text column's nearly all do (a text-only
    # task would be left without a feature): free text gets LightGBM's codes
    text = [c.name for c in ctx.columns if c.dtype == "text" and c.name in categorical]
    _ordinal_codes(X, X_test, text)
    for col in (c for c in categorical if c not in text):  # FLAML encodes pandas categoricals itself
        kind = pd.CategoricalDtype(sorted(_as_text(X[[col]])[col].dropna().unique()))
        X[col] = _as_text(X[[col]])[col].astype(kind)
        X_test[col] = _as_text(X_test[[col]])[col].astype(kind)
    regression = ctx.task_type == "regression"
    target = y.astype(float).to_numpy() if regression else _class_codes(y, ctx)
    n_classes = len(ctx.classes)

    def loss(X_val, y_val, estimator, *args, **kwargs):
        if regression or not metric.proba:
            pred = estimator.predict(X_val)
        else:
            pred = _spread(estimator.predict_proba(X_val), np.arange(n_classes), n_classes)
            pred = pred[:, -1] if n_classes == 2 else pred
        score = metric.fn(np.asarray(y_val), pred)
        return (-score if metric.maximize else score), {metric.name: score}

    automl = AutoML()
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(work or scratch):
        automl.fit(X, target, task="regression" if regression else "classification", metric=loss,
                   time_budget=budget, seed=task.seed, verbose=0)
    info = {"best_estimator": automl.best_estimator, "best_config": automl.best_config}
    return _submission(test, ctx, metric, lambda: automl.predict(X_test),
                       lambda: _spread(automl.predict_proba(X_test), automl.classes_, n_classes)), info


@per_target
def autogluon_baseline(task: Task, data: PreparedData, metric: Metric, budget: float,
                       work: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """AutoGluon Tabular for ``budget`` seconds with the ``medium_quality`` preset (no bagging or stacking, which
    short budgets cannot afford), on at most the executor's cores, optimising the task's own metric on its own
    holdout, on the columns LightGBM gets (an image task's pixels too); its models are written under ``work`` (a
    temporary folder when None)."""
    try:
        from autogluon.core.metrics import make_scorer
        from autogluon.tabular import TabularPredictor
    except ImportError:
        raise UserError("the AutoGluon baseline needs autogluon.tabular: pip install -e '.[autogluon]'") from None

    ctx = data.context
    X, y, test, X_test, categorical = _frames(task, data)
    if categorical:  # AutoGluon encodes text columns itself; text makes '1.0' and '1' one category, as elsewhere
        X[categorical] = _as_text(X[categorical])
        X_test[categorical] = _as_text(X_test[categorical])
    regression = ctx.task_type == "regression"
    n_classes = len(ctx.classes)
    label = "__target__"  # cannot clash with a feature: the target was popped from X
    train = X.assign(**{label: y.astype(float).to_numpy() if regression else _class_codes(y, ctx)})
    _SCORE_FNS[metric.name] = metric.fn
    scorer = make_scorer(metric.name, _ScoreFn(metric.name), optimum=1.0 if metric.maximize else 0.0,
                         greater_is_better=metric.maximize, needs_proba=metric.proba and not regression,
                         needs_class=not metric.proba and not regression)
    problem = "regression" if regression else ("binary" if n_classes == 2 else "multiclass")
    with _folder(work) as folder:
        predictor = TabularPredictor(label=label, problem_type=problem, eval_metric=scorer, path=str(folder / "models"),
                                     verbosity=0)
        predictor.fit(train, time_limit=budget, presets="medium_quality", num_cpus=executor_cores(task), num_gpus=0)
        info = {"best_model": predictor.model_best, "models": len(predictor.model_names())}
        sub = _submission(test, ctx, metric, lambda: predictor.predict(X_test).to_numpy(),
                          lambda: _ag_proba(predictor.predict_proba(X_test, as_multiclass=True), n_classes))
    return sub, info


# AutoGluon pickles its predictor, eval metric included, and a metric's function may be a lambda: the scorer holds
# the metric's name and finds the function here (it is only ever called in this process).
_SCORE_FNS: dict[str, Callable] = {}


class _ScoreFn:
    def __init__(self, name: str):
        self.name = name

    def __call__(self, y_true, y_pred) -> float:
        return _SCORE_FNS[self.name](np.asarray(y_true), np.asarray(y_pred))


def _ag_proba(proba: pd.DataFrame, n_classes: int) -> np.ndarray:
    """AutoGluon's probabilities (a column per class code it saw) in class-index order."""
    return _spread(proba.to_numpy(dtype=float), [int(c) for c in proba.columns], n_classes)


@contextlib.contextmanager
def _folder(work: Path | None):
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        yield work
        return
    with tempfile.TemporaryDirectory(prefix="mlestar-autogluon-") as tmp:
        yield Path(tmp)


@per_target
def tfidf_baseline(task: Task, data: PreparedData, metric: Metric, budget: float,
                   work: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """TF-IDF + logistic regression, what a user tries first on text: word 1-2-grams and char_wb 2-5-grams (sublinear
    tf, min_df 2) of each free-text column, one-hot categoricals and standardised numeric columns, stacked sparse,
    into LogisticRegression(C=4) (Ridge for regression). NotApplicable without a text column; ``budget``, ``work``
    unused."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    ctx = data.context
    text = [c.name for c in ctx.columns if c.dtype == "text"]
    if not text:
        raise NotApplicable("no text column")
    X, y, test, X_test, categorical = _frames(task, data)
    text = [c for c in text if c in X]
    others = [c for c in categorical if c not in text]
    numeric = [c for c in X if c not in categorical]
    encoders: list[tuple[Any, Callable[[pd.DataFrame], Any]]] = []
    for col in text:
        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
        encoders += [(enc, lambda f, col=col: f[col].fillna("").astype(str)) for enc in (words, chars)]
    if others:  # gaps are a category of their own
        encoders.append((OneHotEncoder(handle_unknown="ignore"), lambda f: _as_text(f[others]).fillna("")))
    if numeric:  # logistic regression takes no gaps: the median fills them
        encoders.append((make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                         lambda f: f[numeric].astype(float)))
    A = sparse.hstack([sparse.csr_matrix(enc.fit_transform(cols(X))) for enc, cols in encoders]).tocsr()
    B = sparse.hstack([sparse.csr_matrix(enc.transform(cols(X_test))) for enc, cols in encoders]).tocsr()
    if ctx.task_type == "regression":
        model = Ridge().fit(A, y.astype(float))
    else:
        model = LogisticRegression(C=4, max_iter=2000).fit(A, _class_codes(y, ctx))
    return _submission(test, ctx, metric, lambda: model.predict(B),
                       lambda: _spread(model.predict_proba(B), model.classes_, len(ctx.classes))), {}


def executor_cores(task: Task) -> int:
    """The cores the task's executor uses at most: ``workers`` scripts at a time, each given cpu_count // workers
    threads (core.local_executor), so a baseline given this many competes for no more than the agent had."""
    cpus = os.cpu_count() or 1
    workers = task.executor.options.get("workers", cpus)
    try:
        workers = max(1, int(workers))
    except (TypeError, ValueError):
        workers = cpus
    return max(1, min(cpus, workers * max(1, cpus // workers)))


def _ordinal_codes(X: pd.DataFrame, X_test: pd.DataFrame, columns: list[str]) -> None:
    """Replace ``columns`` of both frames, in place, by their values' codes among the training values' (gaps stay
    gaps; a value training never had is -1)."""
    from sklearn.preprocessing import OrdinalEncoder

    if columns:
        enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=np.nan)
        X[columns] = enc.fit_transform(_as_text(X[columns]))
        X_test[columns] = enc.transform(_as_text(X_test[columns]))


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical values as text ('1.0' and '1' alike), gaps kept as NaN."""
    def cell(v):
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)
    return frame.apply(lambda s: s.map(cell, na_action="ignore")).astype(object).where(frame.notna(), np.nan)


def _spread(proba: np.ndarray, classes, n_classes: int) -> np.ndarray:
    """Probabilities in class-index order, with zeros for classes the model never saw."""
    out = np.zeros((len(proba), n_classes))
    out[:, np.asarray(classes, dtype=int)] = proba
    return out


BASELINE_FITS: dict[str, Baseline] = {
    "lightgbm": lightgbm_baseline, "flaml": flaml_baseline, "autogluon": autogluon_baseline, "tfidf": tfidf_baseline}


def available_baselines(log: Callable[[str], None] = print) -> list[str]:
    """The baselines this installation can run; an optional one whose package is missing is left out, said in one
    line (a bench without AutoGluon still compares with LightGBM and FLAML)."""
    names = []
    for name in BASELINES:
        module, extra = OPTIONAL.get(name, (None, None))
        if module and not _installed(module):
            log(f"bench: {module} is not installed, so the {name} baseline is left out "
                f"(pip install -e '.[{extra}]')")
            continue
        names.append(name)
    return names


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


# --- one task ---------------------------------------------------------------------------------------------------

def public_view(folder: Path, view: Path) -> Path:
    """Copy the task folder without its private files (``private/``, anything named like answers or solutions)
    to ``view``; the agent sees only this copy. Returns the copy's task.yaml."""
    def private(_dir: str, names: list[str]) -> list[str]:
        return [n for n in names if any(m in n.lower() for m in PRIVATE_MARKERS) or n == "out"]
    shutil.copytree(folder, view, ignore=private)
    return view / "task.yaml"


def bench_task(bt: BenchTask, out: Path, *, log: Callable[[str], None] = print,
               baselines: list[str] | None = None, seed: int | None = None, policy: dict | None = None) -> dict:
    """Run the agent and the baselines (default: every installed one) on one task; returns its row of the benchmark
    (scores, seconds, overhead). The agent's report.html is rewritten afterwards with the baselines' test scores.
    ``seed`` replaces the task's seed for the agent and the seeded baselines (FLAML); ``policy`` ({name, options})
    the task's policy."""
    root = out / bt.name
    if root.exists():
        if not (root / MARKER).is_file():
            raise SuiteError(f"{root}: exists and was not written by the benchmark; pass another --out")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    write_atomic(root / MARKER, json.dumps({"task": bt.name, "folder": str(bt.folder), "started_at": time.time()}))
    task_yaml = public_view(bt.folder, root / "public")
    task, registry = load_with_plugins(task_yaml, root / "agent")
    task = task.model_copy(update={"budget": task.budget.model_copy(update={"total_seconds": bt.budget}),
                                   **({"seed": seed} if seed is not None else {}),
                                   **({"policy": PluginChoice.model_validate(policy)} if policy else {})})
    metric = registry.metrics[task.metric]
    if task.id_column is None:
        raise SuiteError(f"{bt.folder / 'task.yaml'}: the benchmark grades by id; give the task an id column")
    data = prepare_data(task, maximize=metric.maximize, proba=metric.proba)
    ctx = data.context
    answers = bt.folder / ANSWERS
    row: dict[str, Any] = {"task": bt.name, "metric": task.metric, "direction": metric.direction, "seed": task.seed,
                           "budget_seconds": bt.budget, "rows": {"train": ctx.n_train + ctx.n_valid, "test": ctx.n_test}}

    log(f"bench: {bt.name}: agent, {bt.budget:g} s budget")
    from graphs.runner import run_task  # composition root: the only upward import

    agent: dict[str, Any] = {"score": None, "error": None, "submission": str(task.output / "submission.csv")}
    started = time.time()
    try:
        agent["exit_code"] = run_task(task, registry, show_progress=False)
    except Exception as exc:  # noqa: BLE001 - a crashed run is a result; its traceback goes to the console
        traceback.print_exc()
        agent["exit_code"], agent["error"] = None, f"the run crashed: {type(exc).__name__}: {exc}"
    agent["wall_seconds"] = round(time.time() - started, 1)
    result_file = task.output / "result.json"
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    agent["run_id"] = result.get("run_id")
    agent["validation_score"] = result.get("scores", {}).get("final")
    selection = result.get("selection") or {}
    # the chosen solution's score on the search's validation rows and on the held-out selection rows: with the
    # test score, how much each flattered it
    agent["search_score"], agent["selection_score"] = selection.get("search_score"), selection.get("holdout")
    agent["overhead"] = framework_overhead(task.output / "runs.sqlite", result["run_id"]) if result else None
    if agent["error"] is None:
        agent["score"], agent["error"] = _graded(Path(agent["submission"]), answers, ctx, metric)
    row["agent"] = agent

    row["baselines"] = {}
    for name in available_baselines(log) if baselines is None else baselines:
        log(f"bench: {bt.name}: {name} baseline")
        path = root / "baselines" / name / "submission.csv"
        entry: dict[str, Any] = {"score": None, "error": None, "submission": str(path)}
        started = time.time()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sub, info = BASELINE_FITS[name](task, data, metric, bt.budget, work=path.parent)
            path.parent.mkdir(parents=True, exist_ok=True)
            sub.to_csv(path, index=False)
            entry.update(info)
        except UserError:
            raise
        except NotApplicable as exc:  # no score, and no count against (or for) the agent
            entry.update(submission=None, not_applicable=str(exc))
        except Exception as exc:  # noqa: BLE001 - a failed baseline is a result; keep the traceback visible
            traceback.print_exc()
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["wall_seconds"] = round(time.time() - started, 1)
        if entry["error"] is None and entry["submission"] is not None:
            entry["score"], entry["error"] = _graded(path, answers, ctx, metric)
        row["baselines"][name] = entry

    row["ratios"], row["beats"] = verdicts(agent["score"], row["baselines"], metric)
    row["gains"] = {name: paired_gain([(Path(agent["submission"]), Path(entry["submission"]))], answers, ctx, metric)
                    for name, entry in row["baselines"].items()
                    if agent["score"] is not None and entry["score"] is not None}
    if result:
        _report_with_baselines(task.output, result, row, log)
    write_atomic(root / "bench.json", json.dumps(row, indent=1, default=str))
    return row


def verdicts(agent: float | None, baselines: dict[str, dict], metric: Metric) -> tuple[dict, dict]:
    """Per baseline (its entry of a task's row), the agent's ratio to it and whether the agent beat it; None when
    the baseline does not apply to the task: the agent neither beat it nor lost to it there."""
    return ({n: ratio(agent, b["score"], metric) for n, b in baselines.items()},
            {n: None if b.get("not_applicable") else metric.better(agent, b["score"]) for n, b in baselines.items()})


def _report_with_baselines(agent_out: Path, result: dict, row: dict, log: Callable[[str], None]) -> None:
    """Rewrite the agent's report.html so its anytime curve shows the baselines' test scores and the agent's own
    final test score (the run wrote it before any of them existed)."""
    # composition root: the only upward imports
    from graphs.report_html import write_report_html

    scores = {f"{name} (test)": entry["score"] for name, entry in row["baselines"].items()
              if entry["score"] is not None}
    try:
        write_report_html(agent_out, result, agent_out / "runs.sqlite", baselines=scores,
                          final_test=row["agent"]["score"])
    except Exception as exc:  # noqa: BLE001 - the scores are the bench's result; a report it cannot draw is not
        traceback.print_exc()
        log(f"bench: {row['task']}: report.html not rewritten: {type(exc).__name__}: {exc}")


def _graded(path: Path, answers: Path, ctx: TaskContext, metric: Metric) -> tuple[float | None, str | None]:
    try:
        return grade(path, answers, ctx, metric), None
    except GradeError as exc:
        return None, str(exc)


# --- the suite --------------------------------------------------------------------------------------------------

def run_suite(suite_path: str | Path, *, out: str | Path | None = None, budget: float | None = None,
              only: list[str] | None = None, log: Callable[[str], None] = print, seed: int | None = None) -> dict:
    """Run every selected task (with ``seed`` instead of each task's own, when given); writes ``bench.json`` and
    ``bench.md`` into the output folder and returns the report (the JSON's content)."""
    suite, tasks, default_out = load_suite(suite_path, budget=budget, only=only)
    out_dir = Path(out).resolve() if out else default_out
    for bt in tasks:  # every task file is checked before anything runs
        task, _ = load_with_plugins(bt.folder / "task.yaml")
        shown = [p for p in task.public_files.values()
                 if bt.folder / "private" in p.parents or any(m in p.name.lower() for m in PRIVATE_MARKERS)]
        if shown:
            raise SuiteError(f"{bt.folder / 'task.yaml'}: names the private file {shown[0]}; the agent must never "
                             f"see the answers")
    out_dir.mkdir(parents=True, exist_ok=True)
    names = available_baselines(log)
    report: dict[str, Any] = {"suite": suite.name, "suite_file": str(Path(suite_path).resolve()),
                              "output": str(out_dir), "baselines": names, "started_at": time.time(),
                              "tasks": []}
    for bt in tasks:
        report["tasks"].append(bench_task(bt, out_dir, log=log, baselines=names, seed=seed))
        report["summary"] = summary(report["tasks"], names)
        write_atomic(out_dir / "bench.json", json.dumps(report, indent=1, default=str))
        write_atomic(out_dir / "bench.md", markdown(report))
    report["finished_at"] = time.time()
    write_atomic(out_dir / "bench.json", json.dumps(report, indent=1, default=str))
    return report


def summary(rows: list[dict], names: list[str]) -> dict:
    """Medal-style: for each baseline, on how many of the tasks it applies to the agent beat it."""
    out = {}
    for name in names:
        rated = [r for r in rows if r["beats"][name] is not None]
        out[name] = {"beaten": sum(bool(r["beats"][name]) for r in rated), "tasks": len(rated),
                     "beaten_on": [r["task"] for r in rated if r["beats"][name]]}
    return out


def seed_gains(reports: list[dict], folders: dict[str, Path], metrics: dict[str, Metric], *,
               resamples: int = RESAMPLES) -> dict[str, dict]:
    """Per task and baseline, the agent's gain averaged over the seeds' runs with its interval (``paired_gain`` over
    every seed's pair of submissions). ``folders``: each task's suite folder (its private answers)."""
    out: dict[str, dict] = {}
    for task, rows in _rows_by_task(reports).items():
        ctx = saved_context(Path(rows[0]["agent"]["submission"]).parent / "data")
        if ctx is None or task not in folders:
            continue
        for name in reports[0]["baselines"]:
            pairs = [(Path(r["agent"]["submission"]), Path(r["baselines"][name]["submission"])) for r in rows
                     if r["agent"]["score"] is not None and r["baselines"][name]["score"] is not None]
            if len(pairs) == len(rows):  # a seed without both scores would weigh the others more
                out.setdefault(task, {})[name] = paired_gain(pairs, folders[task] / ANSWERS, ctx,
                                                             metrics[rows[0]["metric"]], resamples=resamples)
    return out


def _rows_by_task(reports: list[dict]) -> dict[str, list[dict]]:
    by_task: dict[str, list[dict]] = {}
    for report in reports:
        for row in report["tasks"]:
            by_task.setdefault(row["task"], []).append(row)
    return by_task


def seeds_markdown(reports: list[dict], gains: dict[str, dict] | None = None) -> str:
    """Runs of one suite under several seeds, per task: each system's test score as mean ± standard deviation over
    the seeds, and in how many seeds the agent was at least as good as the best baseline of that same seed; with
    ``gains`` (``seed_gains``), the agent's mean gain over each baseline with its interval."""
    names = reports[0]["baselines"]
    by_task = _rows_by_task(reports)
    seeds = ", ".join(str(r["tasks"][0]["seed"]) if r["tasks"] else "?" for r in reports)  # each row has its run's
    lines = [f"# Benchmark over seeds: {reports[0]['suite']}", "",
             f"Test scores, mean ± standard deviation over {len(reports)} seeds "
             f"({seeds}); the last column counts the seeds in which the "
             f"agent was at least as good as the best baseline run with the same seed.", "",
             "| task | metric | agent | " + " | ".join(names) + " | agent ≥ best baseline |",
             "|---|---|---|" + "---|" * len(names) + "---|"]
    for task, rows in by_task.items():
        def spread(values: list, applies: bool = True) -> str:
            values = [v for v in values if v is not None]
            if not values:
                return "—" if applies else "n/a"
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.fmean(values):.5g} ± {sd:.2g}"

        maximize = rows[0]["direction"] == "maximize"
        wins = 0
        for r in rows:
            scores = [b["score"] for b in r["baselines"].values() if b["score"] is not None]
            best = (max if maximize else min)(scores) if scores else None
            a = r["agent"]["score"]
            wins += a is not None and (best is None or (a >= best if maximize else a <= best))
        lines.append(f"| {task} | {rows[0]['metric']} {'↑' if maximize else '↓'} | "
                     f"{spread([r['agent']['score'] for r in rows])} | "
                     + " | ".join(spread([r["baselines"][n]["score"] for r in rows],
                                         not all(r["baselines"][n].get("not_applicable") for r in rows))
                                  for n in names)
                     + f" | {wins}/{len(rows)} |")
    if gains is not None:
        lines += ["", "## The agent against each baseline over the seeds, on the same test rows", "",
                  "The agent's score minus the baseline's (> 0: the agent is better), averaged over the seeds, with a "
                  "95% interval from resampling the test rows and the seeds: an interval that holds 0 is within "
                  "the noise of the test set and of the seeds.", "",
                  "| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for task, rows in by_task.items():
            lines.append(f"| {task} | " + " | ".join(_gain({**rows[0], "gains": gains.get(task, {})}, n)
                                                    for n in names) + " |")
    return "\n".join(lines) + "\n"


def _num(x: float | None, digits: int = 5) -> str:
    return "—" if x is None else f"{x:.{digits}g}"


def markdown(report: dict) -> str:
    """The report as markdown: the score table, framework overhead, and which baselines the agent beat."""
    rows = report["tasks"]
    names = report["baselines"]
    head = ["task", "metric", "agent", *names, *(f"agent/{n}" for n in names), "agent s", *(f"{n} s" for n in names)]
    lines = [f"# Benchmark: {report['suite']}", "",
             "Scores on the private test answers; a ratio > 1 means the agent is better (agent/baseline when higher "
             "is better, baseline/agent when lower is).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        arrow = "↑" if r["direction"] == "maximize" else "↓"
        cells = [r["task"], f"{r['metric']} {arrow}", _num(r["agent"]["score"]),
                 *(_cell(r, n, _num(r["baselines"][n]["score"])) for n in names),
                 *(_cell(r, n, _num(r["ratios"][n], 4)) for n in names),
                 f"{r['agent']['wall_seconds']:.0f}", *(f"{r['baselines'][n]['wall_seconds']:.0f}" for n in names)]
        lines.append("| " + " | ".join(cells) + " |")
    reasons = sorted({f"{n}: {r['baselines'][n]['not_applicable']}" for r in rows for n in names
                      if r["baselines"][n].get("not_applicable")})
    if reasons:
        lines += ["", f"n/a: the baseline does not apply to the task ({'; '.join(reasons)}); such tasks are left "
                      f"out of its count below."]
    lines += ["", "## Framework overhead", "",
              "Share of the agent's run outside script executions (run seconds minus seconds during which a script "
              "was executing, over run seconds).", "",
              "| task | run s | script s (summed) | script s (wall, busy) | overhead |", "|---|---|---|---|---|"]
    for r in rows:
        o = r["agent"]["overhead"] or {}
        lines.append(f"| {r['task']} | {_num(o.get('run_seconds'), 4)} | {_num(o.get('script_seconds'), 4)} | "
                     f"{_num(o.get('script_busy_seconds'), 4)} | "
                     f"{'—' if o.get('overhead') is None else format(o['overhead'], '.1%')} |")
    lines += ["", "## Validation against test (the agent's chosen solution)", "",
              "The search's score is on the rows the plans were chosen on (on small data every search row, "
              "cross-validated; else part of the validation rows); the selection rows are validation rows no "
              "attempt was chosen on; test is the graded submission (rerun on all rows).", "",
              "| task | search rows | selection rows | test | search − test |", "|---|---|---|---|---|"]
    for r in rows:
        a = r["agent"]
        gap = None
        if a.get("search_score") is not None and a.get("score") is not None:
            gap = a["search_score"] - a["score"]
        lines.append(f"| {r['task']} | {_num(a.get('search_score'))} | {_num(a.get('selection_score'))} | "
                     f"{_num(a.get('score'))} | {_num(gap, 4)} |")
    lines += ["", "## The agent against each baseline, on the same test rows", "",
              "The agent's score minus the baseline's in the metric's favourable direction (> 0: the agent is "
              "better), with a 95% interval from resampling the test rows: an interval that holds 0 is within the "
              "test set's own noise.", "",
              "| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for r in rows:
        lines.append(f"| {r['task']} | " + " | ".join(_gain(r, n) for n in names) + " |")
    lines += ["", "## Did the agent beat the baselines?", "",
              "| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for r in rows:
        lines.append(f"| {r['task']} | " + " | ".join(_medal(r, n) for n in names) + " |")
    s = report.get("summary") or summary(rows, names)
    lines.append("| **beaten on** | " + " | ".join(f"**{s[n]['beaten']}/{s[n]['tasks']}**" for n in names) + " |")
    errors = [(r["task"], who, e["error"]) for r in rows
              for who, e in [("agent", r["agent"]), *r["baselines"].items()] if e.get("error")]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {t}, {who}: {err}" for t, who, err in errors]
    return "\n".join(lines) + "\n"


def _gain(row: dict, baseline: str) -> str:
    g = (row.get("gains") or {}).get(baseline)
    if g is None:
        return "n/a" if row["baselines"][baseline].get("not_applicable") else "—"
    mark = " (beyond noise)" if g["low"] > 0 or g["high"] < 0 else ""
    return f"{g['gain']:+.4g} [{g['low']:+.3g}, {g['high']:+.3g}]{mark}"


def _cell(row: dict, baseline: str, shown: str) -> str:
    """``shown``, or n/a when the baseline does not apply to the row's task."""
    return "n/a" if row["baselines"][baseline].get("not_applicable") else shown


def _medal(row: dict, baseline: str) -> str:
    if row["beats"][baseline] is None:
        return "n/a"
    if row["beats"][baseline]:
        return "yes"
    a, b = row["agent"]["score"], row["baselines"][baseline]["score"]
    return "tie" if a is not None and a == b else "no"


def main(argv: list[str] | None = None) -> int:
    logs.enable()  # an application: mlestar's packages log (see core.logs)
    parser = argparse.ArgumentParser(
        prog="python -m core.bench",
        description="Run the agent, default LightGBM, FLAML and (if installed) AutoGluon, the last two with the "
                    "agent's budget, and TF-IDF + logistic regression (on tasks with a text column) on a suite of "
                    "MLE-bench task folders and grade them against the private answers.")
    parser.add_argument("suite", help="path of suite.yaml")
    parser.add_argument("--out", help="output folder (default: suite.yaml's output)")
    parser.add_argument("--budget", type=float,
                        help="agent, FLAML and AutoGluon seconds per task (overrides the suite's)")
    parser.add_argument("--tasks", help="comma-separated task names to run (default: all)")
    parser.add_argument("--seeds", help="comma-separated seeds: the whole benchmark once per seed (in seed-<s>/ of "
                                        "the output folder), then each score's mean and spread in bench-seeds.md")
    args = parser.parse_args(argv)
    only = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        seeds = _seeds(args.seeds)
        if seeds:
            return _run_seeds(args, only, seeds, log)
        report = run_suite(args.suite, out=args.out, budget=args.budget, only=only, log=log)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(markdown(report), end="")
    print(f"\nwritten: {Path(report['output']) / 'bench.md'}, {Path(report['output']) / 'bench.json'}")
    return 0


def finished_seed(folder: Path, tasks: list[BenchTask], seed: int) -> dict | None:
    """The report of a finished run with ``seed`` in ``folder`` that holds every one of ``tasks`` at its budget (the
    rows of the others left out), or None: a seed of a killed ``--seeds`` run is run again, a finished one reused."""
    path = folder / "bench.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    if not report.get("finished_at"):
        return None
    rows = {r["task"]: r for r in report["tasks"]}
    if any(bt.name not in rows or rows[bt.name]["budget_seconds"] != bt.budget or rows[bt.name].get("seed") != seed
           for bt in tasks):
        return None
    return {**report, "tasks": [rows[bt.name] for bt in tasks]}


def _seeds(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SuiteError(f"--seeds: {text!r} is not a comma-separated list of integers (e.g. 0,1,2)") from None


def _run_seeds(args, only: list[str] | None, seeds: list[int], log: Callable[[str], None]) -> int:
    _, tasks, default_out = load_suite(args.suite, budget=args.budget, only=only)
    out = Path(args.out).resolve() if args.out else default_out
    reports = []
    for seed in seeds:
        done = finished_seed(out / f"seed-{seed}", tasks, seed)
        if done is not None:
            log(f"bench: seed {seed}: finished in {out / f'seed-{seed}'}, its runs are reused")
            reports.append(done)
        else:
            log(f"bench: seed {seed}")
            reports.append(run_suite(args.suite, out=out / f"seed-{seed}", budget=args.budget, only=only, log=log,
                                     seed=seed))
        write_atomic(out / "bench-seeds.md", seeds_markdown(reports))
    log("bench: the agent's gains over the seeds (resampling the test rows and the seeds)")
    registry = installed_registry()
    gains = seed_gains(reports, {bt.name: bt.folder for bt in tasks}, registry.metrics)
    write_atomic(out / "bench-seeds.md", seeds_markdown(reports, gains))
    print(seeds_markdown(reports, gains), end="")
    print(f"\nwritten: {out / 'bench-seeds.md'} (each seed's own report in {out}/seed-<s>/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
