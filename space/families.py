"""What the heuristic policy knows about each model family: its classes, sensible starting parameters, what its
inputs need, and the hyperparameter moves worth trying, each in a named direction with an opposite."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from core.policy import TaskContext
from space import images


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    classification: str | None
    regression: str | None
    defaults: dict  # a good starting point when the family is swapped in (random_state comes from the seed)
    needs_scaling: bool
    handles_missing: bool
    one_hot: bool  # wants one-hot codes (linear, distance and network models); trees split on ordinal codes
    early_stopping: bool  # boosting rounds or epochs that early stopping can choose
    moves: tuple[str, ...]
    max_rows: int | None = None  # beyond this the family is too slow to swap in
    threads: str | None = None  # the parameter set from the executor's share of the cores (THREADS in the script)
    search: tuple[tuple[str, tuple], ...] = ()  # what the `tune` op's Optuna study searches (see ``search_space``)
    aliases: bool = False  # the class takes many aliases with None defaults: only the params given are in force
    sparse_ok: bool = False  # fits a wide sparse matrix (TF-IDF features) as it is, in seconds
    non_negative: bool = False  # needs non-negative, count-like features: TF-IDF of text alone (see space.text)
    # task type (or "binary": two classes) -> params overlaid on the starting ones on TF-IDF features
    sparse_params: dict | None = None
    images: bool = False  # reads the image step's pixel columns: only for tasks with images

    def path(self, task_type: str) -> str | None:
        return self.classification if task_type == "classification" else self.regression


_BOOSTING_RATE = ("learning_rate", ("float", 0.01, 0.3, True))

FAMILIES: tuple[Family, ...] = (
    Family("lightgbm", "LightGBM", "lightgbm.LGBMClassifier", "lightgbm.LGBMRegressor",
           {"n_estimators": 500, "learning_rate": 0.05, "num_leaves": 31, "subsample": 0.8, "subsample_freq": 1,
            "colsample_bytree": 0.8, "verbose": -1},
           needs_scaling=False, handles_missing=True, one_hot=False, early_stopping=True,
           moves=("slower_learning", "faster_learning", "more_leaves", "fewer_leaves", "more_regularisation",
                  "less_regularisation", "fewer_columns", "balanced_classes"),
           search=(("n_estimators", ("int", 100, 1500, True)), _BOOSTING_RATE, ("num_leaves", ("int", 8, 128, True)),
                   ("min_child_samples", ("int", 5, 100, True)), ("colsample_bytree", ("float", 0.4, 1.0, False)),
                   ("subsample", ("float", 0.5, 1.0, False)), ("reg_lambda", ("float", 1e-3, 10.0, True))),
           # its n_jobs=None means every physical core, whatever OMP_NUM_THREADS says: on a loaded 2-core machine
           # with OMP_NUM_THREADS=1, 500 rounds on 5,000 x 30 took 200 s that way and 12-18 s with n_jobs=1
           threads="n_jobs", sparse_ok=True),
    Family("xgboost", "XGBoost", "xgboost.XGBClassifier", "xgboost.XGBRegressor",
           {"n_estimators": 500, "learning_rate": 0.05, "max_depth": 6, "min_child_weight": 1.0, "subsample": 0.8,
            "colsample_bytree": 0.8, "reg_lambda": 1.0, "verbosity": 0},
           needs_scaling=False, handles_missing=True, one_hot=False, early_stopping=True,
           moves=("slower_learning", "faster_learning", "deeper", "shallower", "more_regularisation",
                  "less_regularisation", "fewer_columns", "fewer_rows"),
           threads="n_jobs",
           search=(("n_estimators", ("int", 100, 1500, True)), _BOOSTING_RATE, ("max_depth", ("int", 3, 10, False)),
                   ("min_child_weight", ("float", 0.5, 20.0, True)), ("subsample", ("float", 0.5, 1.0, False)),
                   ("colsample_bytree", ("float", 0.4, 1.0, False)), ("reg_lambda", ("float", 1e-3, 10.0, True))),
           # TF-IDF weights in 32 bins, not 256: docstring-sections' draft took half the time (3 search folds, 23.6 s
           # against 49.5 s) at the same AUC (0.6602 against 0.6545; 16 bins: 0.6567 in 16.6 s)
           sparse_ok=True, sparse_params={"classification": {"max_bin": 32}, "regression": {"max_bin": 32}}),
    Family("catboost", "CatBoost", "catboost.CatBoostClassifier", "catboost.CatBoostRegressor",
           {"iterations": 800, "learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0, "logging_level": "Silent",
            "allow_writing_files": False},
           needs_scaling=False, handles_missing=True, one_hot=False, early_stopping=True,
           moves=("slower_learning", "faster_learning", "deeper", "shallower", "more_regularisation",
                  "less_regularisation"),
           max_rows=1_000_000, threads="thread_count", aliases=True,
           search=(("iterations", ("int", 200, 1500, True)), ("learning_rate", ("float", 0.02, 0.3, True)),
                   ("depth", ("int", 4, 8, False)), ("l2_leaf_reg", ("float", 1.0, 30.0, True)))),
    Family("hist_gradient_boosting", "HistGradientBoosting", "sklearn.ensemble.HistGradientBoostingClassifier",
           "sklearn.ensemble.HistGradientBoostingRegressor", {"max_iter": 300, "learning_rate": 0.05},
           needs_scaling=False, handles_missing=True, one_hot=False, early_stopping=True,
           moves=("slower_learning", "faster_learning", "more_leaves", "fewer_leaves", "more_regularisation",
                  "less_regularisation", "balanced_classes"),
           search=(("max_iter", ("int", 100, 1000, True)), _BOOSTING_RATE, ("max_leaf_nodes", ("int", 8, 128, True)),
                   ("min_samples_leaf", ("int", 5, 100, True)), ("l2_regularization", ("float", 1e-4, 10.0, True)))),
    Family("random_forest", "RandomForest", "sklearn.ensemble.RandomForestClassifier",
           "sklearn.ensemble.RandomForestRegressor", {"n_estimators": 300},
           needs_scaling=False, handles_missing=False, one_hot=False, early_stopping=False,
           moves=("more_trees", "larger_leaves", "more_features", "fewer_features", "balanced_classes"),
           max_rows=500_000,
           search=(("n_estimators", ("int", 100, 600, True)), ("min_samples_leaf", ("int", 1, 20, True)),
                   ("max_features", ("float", 0.2, 1.0, False)))),
    Family("extra_trees", "ExtraTrees", "sklearn.ensemble.ExtraTreesClassifier",
           "sklearn.ensemble.ExtraTreesRegressor", {"n_estimators": 300},
           needs_scaling=False, handles_missing=False, one_hot=False, early_stopping=False,
           moves=("more_trees", "larger_leaves", "more_features", "fewer_features", "balanced_classes"),
           max_rows=500_000,
           search=(("n_estimators", ("int", 100, 600, True)), ("min_samples_leaf", ("int", 1, 20, True)),
                   ("max_features", ("float", 0.2, 1.0, False)))),
    Family("gradient_boosting", "GradientBoosting", "sklearn.ensemble.GradientBoostingClassifier",
           "sklearn.ensemble.GradientBoostingRegressor",
           {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3, "subsample": 0.8},
           needs_scaling=False, handles_missing=False, one_hot=False, early_stopping=True,
           moves=("slower_learning", "faster_learning", "deeper", "shallower", "fewer_rows", "larger_leaves"),
           max_rows=100_000,
           search=(("n_estimators", ("int", 100, 800, True)), _BOOSTING_RATE, ("max_depth", ("int", 2, 6, False)),
                   ("subsample", ("float", 0.5, 1.0, False)))),
    Family("linear", "linear model", "sklearn.linear_model.LogisticRegression", "sklearn.linear_model.Ridge",
           {"max_iter": 2000},
           needs_scaling=True, handles_missing=False, one_hot=True, early_stopping=False,
           moves=("less_regularisation", "more_regularisation", "balanced_classes"),
           search=(("C", ("float", 1e-3, 100.0, True)), ("alpha", ("float", 1e-3, 100.0, True))),
           # Logistic regression on TF-IDF features, several classes: weaker regularisation (C 10 scored 0.24
           # against C 1's 0.41 log loss on the docstring task of tests/test_text_recipes.py) and SAGA, 5x faster
           # than L-BFGS there. Two classes (each target of a multi-label task too): L-BFGS, 13x faster than SAGA on
           # docstring-sections' four targets; C 4 was within 0.006 AUC of the best C there (1) and on three
           # one-library-against-the-rest targets of stdlib-docstrings (4-10), 3-fold CV. Ridge's SAGA cannot fit
           # an intercept on a sparse matrix: its own solver choice stays.
           sparse_ok=True, sparse_params={"classification": {"C": 10.0, "solver": "saga"},
                                          "binary": {"C": 4.0, "solver": "lbfgs"}}),
    Family("svm", "SVM", "sklearn.svm.SVC", "sklearn.svm.SVR", {"C": 1.0, "probability": True},
           needs_scaling=True, handles_missing=False, one_hot=True, early_stopping=False,
           moves=("less_regularisation", "more_regularisation", "balanced_classes"), max_rows=10_000,
           search=(("C", ("float", 0.05, 100.0, True)), ("epsilon", ("float", 0.01, 1.0, True)))),
    Family("mlp", "MLP", "sklearn.neural_network.MLPClassifier", "sklearn.neural_network.MLPRegressor",
           {"hidden_layer_sizes": [128, 64], "alpha": 0.0001, "learning_rate_init": 0.001, "max_iter": 500,
            "early_stopping": True},
           needs_scaling=True, handles_missing=False, one_hot=True, early_stopping=True,
           moves=("wider", "narrower", "more_regularisation", "less_regularisation"), max_rows=300_000,
           search=(("alpha", ("float", 1e-6, 1e-1, True)), ("learning_rate_init", ("float", 1e-4, 1e-2, True)))),
    Family("knn", "k-nearest neighbours", "sklearn.neighbors.KNeighborsClassifier",
           "sklearn.neighbors.KNeighborsRegressor", {"n_neighbors": 15, "weights": "distance"},
           needs_scaling=True, handles_missing=False, one_hot=True, early_stopping=False,
           moves=("more_neighbours", "fewer_neighbours", "other_weights", "manhattan"), max_rows=20_000,
           search=(("n_neighbors", ("int", 3, 60, True)), ("weights", ("cat", ["uniform", "distance"])),
                   ("p", ("cat", [1, 2])))),
    Family("naive_bayes", "Gaussian naive Bayes", "sklearn.naive_bayes.GaussianNB", None, {},
           needs_scaling=False, handles_missing=False, one_hot=True, early_stopping=False,
           moves=("more_regularisation", "less_regularisation"),
           search=(("var_smoothing", ("float", 1e-12, 1e-2, True)),)),
    # Multinomial naive Bayes on TF-IDF: 0.19 log loss on the docstring task of tests/test_text_recipes.py, as
    # logistic regression at C=100, and 0.17 averaged with it; ComplementNB was as good on text, poor on tables.
    Family("multinomial_nb", "multinomial naive Bayes", "sklearn.naive_bayes.MultinomialNB", None, {"alpha": 0.3},
           needs_scaling=False, handles_missing=False, one_hot=True, early_stopping=False,
           moves=("more_regularisation", "less_regularisation"),
           search=(("alpha", ("float", 0.01, 3.0, True)),), sparse_ok=True, non_negative=True),
    # defined by the script itself (space.images); bounded by its own time slice, so neither tuned nor early-stopped
    # by the train block (it stops on held-out training rows itself)
    Family("cnn", "small CNN", images.CNN_CLASSIFIER, images.CNN_REGRESSOR, dict(images.CNN_DEFAULTS),
           needs_scaling=False, handles_missing=True, one_hot=False, early_stopping=False,
           moves=("longer_training", "wider", "narrower", "lower_rate", "higher_rate", "more_regularisation",
                  "less_regularisation"), images=True),
)

# Parameters a model needs to do its job here, kept when everything else goes back to the class defaults.
ESSENTIAL = {"verbose": -1, "probability": True, "verbosity": 0, "logging_level": "Silent", "allow_writing_files": False}


def family_of(path: str) -> Family | None:
    for family in FAMILIES:
        if path in (family.classification, family.regression):
            return family
    return None


def family_name(path: str) -> str:
    family = family_of(path)
    return family.name if family else path.rpartition(".")[2]


def title_of(path: str) -> str:
    """How plans name a model: its class name."""
    return path.rpartition(".")[2]


def needs_scaling(path: str) -> bool:
    family = family_of(path)
    return family.needs_scaling if family else False


def handles_missing(path: str) -> bool:
    family = family_of(path)
    return family.handles_missing if family else False


def wants_one_hot(path: str) -> bool:
    family = family_of(path)
    return family.one_hot if family else False


def threads_param(path: str) -> str | None:
    """The parameter this class's thread count goes in, set from the executor's share (None: it reads
    OMP_NUM_THREADS or LOKY_MAX_CPU_COUNT itself)."""
    family = family_of(path)
    return family.threads if family else None


@lru_cache(maxsize=16)
def installed(path: str) -> bool:
    """Whether the class's library is installed here (found, not imported: importing CatBoost takes a second)."""
    return importlib.util.find_spec(images.library_of(path)) is not None


def swap_targets(ctx: TaskContext, exclude: set[str]) -> list[Family]:
    """Families that could replace a model for this task, strongest on tabular data first (image tasks: the image
    families first; libraries that are not installed left out)."""
    rows = ctx.n_train
    found = [f for f in FAMILIES if f.path(ctx.task_type) and f.name not in exclude and (not f.images or ctx.images)
             and (f.max_rows is None or rows <= f.max_rows) and installed(f.path(ctx.task_type))]
    return sorted(found, key=lambda f: not f.images) if ctx.modality == "image" else found


def search_space(path: str) -> dict[str, tuple]:
    """The `tune` op's ranges for this class: name -> ("int"|"float", low, high, log) or ("cat", choices); only
    the parameters the class takes (the linear family's C is LogisticRegression's, alpha Ridge's)."""
    family = family_of(path)
    if family is None:
        return {}
    return {name: spec for name, spec in family.search if names_param(path, name) or name in family.defaults}


@lru_cache(maxsize=64)
def _signature(path: str) -> tuple[tuple[str, object], ...] | None:
    """(name, default) of the class's constructor parameters; None when it cannot be imported here."""
    if images.scripted(path):  # a class the script defines: its known signature, nothing to import
        return images.CNN_SIGNATURE
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        parameters = inspect.signature(cls).parameters.values()
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):  # LightGBM passes unknown keywords to its booster
        return tuple((p.name, p.default) for p in parameters if p.kind is not p.VAR_KEYWORD) + (("**", None),)
    return tuple((p.name, p.default) for p in parameters)


def importable(path: str) -> bool:
    return _signature(path) is not None


def accepts(path: str, param: str) -> bool:
    """Whether the class takes ``param`` (True when it cannot be inspected here: leave the card's params alone)."""
    sig = _signature(path)
    if sig is None:
        return True
    names = {name for name, _ in sig}
    return param in names or "**" in names


def names_param(path: str, param: str) -> bool:
    """Whether the class's signature names ``param`` itself (not merely through ``**kwargs``)."""
    return any(name == param for name, _ in _signature(path) or ())


def class_defaults(path: str) -> dict:
    sig = _signature(path) or ()
    return {name: default for name, default in sig if name != "**" and default is not inspect.Parameter.empty}


def fit_params(path: str, params: dict) -> dict:
    """The params this class accepts (one card's params dict serves a classifier and a regressor)."""
    return {k: v for k, v in params.items() if accepts(path, k)}


# A model fitted to the metric's own loss: for MAE the conditional median, not the mean (a skewed count's mean sits
# far from where most rows are). Only the boosters: a forest's absolute-error splits are too slow to be a default.
METRIC_OBJECTIVES = {
    "mae": {"lightgbm": {"objective": "l1"}, "xgboost": {"objective": "reg:absoluteerror"},
            "catboost": {"loss_function": "MAE"}, "hist_gradient_boosting": {"loss": "absolute_error"}},
}


def metric_params(ctx: TaskContext, path: str) -> dict:
    """The params that make the model at ``path`` optimise the task's metric (empty: its default loss does)."""
    if ctx.task_type != "regression":
        return {}
    family = family_of(path)
    return dict(METRIC_OBJECTIVES.get(ctx.metric, {}).get(family.name if family else "", {}))


# --- hyperparameter moves ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Move:
    """A change in one direction; ``change(params, strength, ctx)`` gives the changed entries or None."""

    name: str
    opposite: str | None
    says: str
    change: Callable[[dict, int, TaskContext], dict | None]


def _num(value, fallback: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else fallback


def _rounds_key(p: dict) -> str | None:
    for key in ("iterations", "n_estimators", "max_iter"):  # CatBoost's own name first (n_estimators is its alias)
        if key in p:
            return key
    return None


def _slower(p, s, ctx):
    key = _rounds_key(p)
    if key is None or "learning_rate" not in p:
        return None
    rounds, rate = _num(p[key], 100), _num(p["learning_rate"], 0.1)
    if rounds >= 4000:
        return None
    return {key: int(min(8000, rounds * 2 ** s)), "learning_rate": round(rate / 2 ** s, 6)}


def _faster(p, s, ctx):
    key = _rounds_key(p)
    if key is None or "learning_rate" not in p:
        return None
    rounds, rate = _num(p[key], 100), _num(p["learning_rate"], 0.1)
    if rate >= 0.3 or rounds <= 30:
        return None
    return {key: max(25, int(rounds / 2 ** s)), "learning_rate": round(min(0.5, rate * 2 ** s), 6)}


def _leaves_key(p: dict) -> str | None:
    return "num_leaves" if "num_leaves" in p else ("max_leaf_nodes" if "max_leaf_nodes" in p else None)


def _more_leaves(p, s, ctx):
    key = _leaves_key(p)
    value = _num(p.get(key), 31) if key else 0
    if key is None or value >= 255:
        return None
    return {key: int(min(255, value * 2 ** s))}


def _fewer_leaves(p, s, ctx):
    key = _leaves_key(p)
    value = _num(p.get(key), 31) if key else 0
    if key is None or value <= 4:
        return None
    return {key: int(max(4, value / 2 ** s))}


def _more_reg(p, s, ctx):
    if "l2_leaf_reg" in p:  # CatBoost
        return {"l2_leaf_reg": round(max(1.0, _num(p["l2_leaf_reg"], 3.0)) * 3 ** s, 6)}
    if "min_child_weight" in p:  # XGBoost
        return {"reg_lambda": round(max(1.0, _num(p.get("reg_lambda"), 1.0)) * 4 ** s, 6),
                "min_child_weight": round(max(1.0, _num(p["min_child_weight"], 1.0)) * 2 ** s, 6)}
    if "reg_lambda" in p:  # LightGBM
        return {"reg_lambda": round(max(1.0, _num(p["reg_lambda"], 0)) * 4 ** s / 4, 6),
                "min_child_samples": int(_num(p.get("min_child_samples"), 20) * 2 ** s)}
    if "l2_regularization" in p:  # HistGradientBoosting
        return {"l2_regularization": round(max(1.0, _num(p["l2_regularization"], 0)) * 4 ** s / 4, 6),
                "min_samples_leaf": int(_num(p.get("min_samples_leaf"), 20) * 2 ** s)}
    if "C" in p:  # logistic regression, SVM: smaller C is stronger regularisation
        return {"C": round(_num(p["C"], 1.0) / (10 if "kernel" not in p else 4) ** s, 8)}
    if "fit_prior" in p:  # naive Bayes' additive smoothing: its useful range is narrow, so smaller steps
        return {"alpha": round(_num(p.get("alpha"), 1.0) * 3 ** s, 8)}
    if "alpha" in p:  # ridge, MLP
        return {"alpha": round(_num(p["alpha"], 1.0) * 10 ** s, 8)}
    if "var_smoothing" in p:
        return {"var_smoothing": _num(p["var_smoothing"], 1e-9) * 100 ** s}
    if "dropout" in p:  # the CNN
        dropout, decay = _num(p["dropout"], 0.3), _num(p.get("weight_decay"), 1e-4)
        if dropout >= 0.6 and decay >= 1e-2:
            return None
        return {"dropout": round(min(0.6, dropout + 0.15 * s), 3), "weight_decay": min(1e-2, decay * 10 ** s)}
    return None


def _less_reg(p, s, ctx):
    if "l2_leaf_reg" in p:
        value = _num(p["l2_leaf_reg"], 3.0)
        return {"l2_leaf_reg": round(max(0.1, value / 3 ** s), 6)} if value > 0.1 else None
    if "min_child_weight" in p:
        lam, weight = _num(p.get("reg_lambda"), 1.0), _num(p["min_child_weight"], 1.0)
        if lam <= 0.01 and weight <= 0.5:
            return None
        return {"reg_lambda": round(lam / 4 ** s, 6) if lam > 0.01 else 0.0,
                "min_child_weight": round(max(0.5, weight / 2 ** s), 6)}
    if "reg_lambda" in p:
        lam = _num(p["reg_lambda"], 0)
        if lam == 0 and _num(p.get("min_child_samples"), 20) <= 5:
            return None
        return {"reg_lambda": round(lam / 4 ** s, 6) if lam > 0.01 else 0.0,
                "min_child_samples": max(2, int(_num(p.get("min_child_samples"), 20) / 2 ** s))}
    if "l2_regularization" in p:
        lam = _num(p["l2_regularization"], 0)
        if lam == 0 and _num(p.get("min_samples_leaf"), 20) <= 5:
            return None
        return {"l2_regularization": round(lam / 4 ** s, 6) if lam > 0.01 else 0.0,
                "min_samples_leaf": max(2, int(_num(p.get("min_samples_leaf"), 20) / 2 ** s))}
    if "C" in p:
        return {"C": round(_num(p["C"], 1.0) * (10 if "kernel" not in p else 4) ** s, 8)}
    if "fit_prior" in p:
        return {"alpha": round(_num(p.get("alpha"), 1.0) / 3 ** s, 8)}
    if "alpha" in p:
        return {"alpha": round(_num(p["alpha"], 1.0) / 10 ** s, 10)}
    if "var_smoothing" in p:
        return {"var_smoothing": _num(p["var_smoothing"], 1e-9) / 100 ** s}
    if "dropout" in p:
        dropout, decay = _num(p["dropout"], 0.3), _num(p.get("weight_decay"), 1e-4)
        if dropout <= 0 and decay <= 1e-6:
            return None
        return {"dropout": round(max(0.0, dropout - 0.15 * s), 3), "weight_decay": max(1e-6, decay / 10 ** s)}
    return None


def _fewer_columns(p, s, ctx):
    value = _num(p.get("colsample_bytree"), 1.0)
    if "colsample_bytree" not in p or value <= 0.3:
        return None
    return {"colsample_bytree": round(max(0.3, value * 0.75 ** s), 3)}


def _fewer_rows(p, s, ctx):
    value = _num(p.get("subsample"), 1.0)
    if "subsample" not in p or value <= 0.4:
        return None
    return {"subsample": round(max(0.4, value * 0.8 ** s), 3)}


def _depth_key(p: dict) -> str:
    return "depth" if "depth" in p else "max_depth"  # CatBoost's own name (max_depth is its alias)


def _deeper(p, s, ctx):
    key = _depth_key(p)
    if key not in p or p[key] is None or _num(p[key], 3) >= 10:
        return None
    return {key: int(min(12 if key == "max_depth" else 10, _num(p[key], 3) + s))}


def _shallower(p, s, ctx):
    key = _depth_key(p)
    if key not in p or p[key] is None or _num(p[key], 3) <= 1:
        return None
    return {key: int(max(1, _num(p[key], 3) - s))}


def _more_trees(p, s, ctx):
    value = _num(p.get("n_estimators"), 100)
    if "n_estimators" not in p or value >= 2000:
        return None
    return {"n_estimators": int(min(3000, value * 2 ** s))}


def _larger_leaves(p, s, ctx):
    if "min_samples_leaf" not in p:
        return None
    value = p["min_samples_leaf"]
    if isinstance(value, float):  # a fraction of the rows: leave it alone
        return None
    return {"min_samples_leaf": int(_num(value, 1) + 2 * s)}


def _feature_share(value, ctx: TaskContext) -> float:
    n = max(1, len(ctx.columns))
    if value in (None, "auto", 1.0, 1):
        return 1.0
    if value == "sqrt":
        return math.sqrt(n) / n
    if value == "log2":
        return max(1.0, math.log2(n)) / n
    return _num(value, 1.0) if _num(value, 1.0) <= 1 else _num(value, 1.0) / n


def _more_features(p, s, ctx):
    if "max_features" not in p:
        return None
    share = _feature_share(p["max_features"], ctx)
    if share >= 0.99:
        return None
    return {"max_features": round(min(1.0, share + 0.25 * s), 3)}


def _fewer_features(p, s, ctx):
    if "max_features" not in p:
        return None
    share = _feature_share(p["max_features"], ctx)
    if share <= 0.15:
        return None
    return {"max_features": round(max(0.1, share - 0.25 * s), 3)}


def _balanced(p, s, ctx):
    if ctx.task_type != "classification" or "class_weight" not in p or p["class_weight"] == "balanced" or s > 1:
        return None
    return {"class_weight": "balanced"}


def _layers(p) -> list[int] | None:
    value = p.get("hidden_layer_sizes")
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return list(value)
    return None


def _wider(p, s, ctx):
    if "width" in p:  # the CNN's channels
        width = _num(p["width"], 16)
        return {"width": int(min(64, width * 2 ** s))} if width < 64 else None
    layers = _layers(p)
    if not layers or max(layers) >= 512:
        return None
    return {"hidden_layer_sizes": [min(512, n * 2 ** s) for n in layers]}


def _narrower(p, s, ctx):
    if "width" in p:
        width = _num(p["width"], 16)
        return {"width": int(max(4, width // 2 ** s))} if width > 4 else None
    layers = _layers(p)
    if not layers or min(layers) <= 8:
        return None
    return {"hidden_layer_sizes": [max(8, n // 2 ** s) for n in layers]}


def _more_neighbours(p, s, ctx):
    value = _num(p.get("n_neighbors"), 5)
    if "n_neighbors" not in p or value * 2 > max(2, ctx.n_train // 4):
        return None
    return {"n_neighbors": int(value * 2 ** s)}


def _fewer_neighbours(p, s, ctx):
    value = _num(p.get("n_neighbors"), 5)
    if "n_neighbors" not in p or value <= 2:
        return None
    return {"n_neighbors": int(max(1, value // 2 ** s))}


def _other_weights(p, s, ctx):
    if "weights" not in p or s > 1:
        return None
    return {"weights": "uniform" if p["weights"] == "distance" else "distance"}


def _longer_training(p, s, ctx):
    """The CNN's time slice and epoch budget, both doubled per step."""
    if "seconds" not in p or _num(p["seconds"], 30) >= 600:
        return None
    return {"seconds": min(600.0, _num(p["seconds"], 30) * 2 ** s),
            "epochs": int(min(300, _num(p.get("epochs"), 30) * 2 ** s))}


def _rate(factor: float):
    def change(p, s, ctx):
        if "learning_rate" not in p or "epochs" not in p:  # a network's step size (boosting has its own moves)
            return None
        rate = _num(p["learning_rate"], 0.003)
        new = min(0.03, max(1e-4, rate * factor ** s))
        return {"learning_rate": round(new, 6)} if abs(new - rate) > 1e-9 else None
    return change


def _manhattan(p, s, ctx):
    if "p" not in p or p["p"] == 1 or s > 1:
        return None
    return {"p": 1}


MOVES: dict[str, Move] = {m.name: m for m in (
    Move("slower_learning", "faster_learning", "more boosting rounds at a lower learning rate", _slower),
    Move("faster_learning", "slower_learning", "fewer boosting rounds at a higher learning rate", _faster),
    Move("more_leaves", "fewer_leaves", "larger trees (more leaves) to capture more interactions", _more_leaves),
    Move("fewer_leaves", "more_leaves", "smaller trees (fewer leaves) to reduce overfitting", _fewer_leaves),
    Move("more_regularisation", "less_regularisation", "stronger regularisation against overfitting", _more_reg),
    Move("less_regularisation", "more_regularisation", "weaker regularisation so the model can fit more", _less_reg),
    Move("fewer_columns", None, "a smaller random share of the features per tree, for more diverse trees",
         _fewer_columns),
    Move("fewer_rows", None, "a smaller random share of the rows per tree (stochastic boosting)", _fewer_rows),
    Move("deeper", "shallower", "deeper trees to capture higher-order interactions", _deeper),
    Move("shallower", "deeper", "shallower trees to reduce overfitting", _shallower),
    Move("more_trees", None, "more trees to lower the variance of the average", _more_trees),
    Move("larger_leaves", None, "a larger minimum leaf size for smoother predictions", _larger_leaves),
    Move("more_features", "fewer_features", "more candidate features per split", _more_features),
    Move("fewer_features", "more_features", "fewer candidate features per split, for more diverse trees",
         _fewer_features),
    Move("balanced_classes", None, "class weights inversely proportional to class frequencies", _balanced),
    Move("wider", "narrower", "wider hidden layers", _wider),
    Move("narrower", "wider", "narrower hidden layers", _narrower),
    Move("more_neighbours", "fewer_neighbours", "more neighbours for smoother predictions", _more_neighbours),
    Move("fewer_neighbours", "more_neighbours", "fewer neighbours for more local predictions", _fewer_neighbours),
    Move("other_weights", None, "the other neighbour weighting (uniform vs distance)", _other_weights),
    Move("manhattan", None, "Manhattan instead of Euclidean distance", _manhattan),
    Move("longer_training", None, "a longer time slice and more epochs", _longer_training),
    Move("lower_rate", "higher_rate", "a lower learning rate (steadier steps)", _rate(0.5)),
    Move("higher_rate", "lower_rate", "a higher learning rate (faster progress in the time slice)", _rate(2.0)),
)}

GENERIC_MOVES = ("slower_learning", "faster_learning", "deeper", "shallower", "more_trees", "more_regularisation",
                 "less_regularisation", "balanced_classes")


def moves_for(path: str) -> tuple[str, ...]:
    family = family_of(path)
    return family.moves if family else GENERIC_MOVES


def current_params(path: str, params: dict) -> dict:
    """The params in force: the class defaults overlaid with the given ones (CatBoost: the given ones only; its
    signature lists every alias with a None default, and a move must not set an alias beside the real name)."""
    family = family_of(path)
    if family is not None and family.aliases:
        return dict(params)
    return {**class_defaults(path), **params}
