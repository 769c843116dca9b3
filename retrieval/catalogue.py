"""The offline `catalogue` search backend: built-in cards for common tabular models, ranked against the task.

It needs no network, so a run always has candidates to draft from, whatever other backends find.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.cards import CardQuery, Estimator, ModelCard
from core.errors import TaskError
from core.hookspecs import hookimpl
from retrieval.card_script import render_script


@dataclass(frozen=True)
class Entry:
    """A card plus what the ranking knows about it."""

    card: ModelCard
    prior: float  # how strong the model usually is on tabular data, all else equal
    rows_limit: int | None = None  # beyond this many rows training gets slow or the model gains nothing
    few_rows_bonus: float = 0.0  # how much better it holds up than the rest on a few hundred rows
    codes_categoricals: bool = False  # splits on ordinal codes, so categorical columns cost it nothing


def catalogue() -> list[Entry]:
    """Every built-in card, built fresh so no caller can change another's."""
    return [
        _entry(
            "lightgbm", "boosting", "LightGBM",
            "Gradient-boosted trees; usually the strongest single model on tabular data from a few thousand rows up, "
            "with missing values and categorical codes handled natively and fast training on large data.",
            Estimator(
                classification="lightgbm.LGBMClassifier", regression="lightgbm.LGBMRegressor",
                params={"n_estimators": 500, "learning_rate": 0.05, "num_leaves": 31, "subsample": 0.8,
                        "subsample_freq": 1, "colsample_bytree": 0.8, "random_state": 0, "verbose": -1},
                handles_missing=True, pip=["lightgbm", "scikit-learn", "pandas"],
            ),
            prior=0.9, few_rows_bonus=-0.05, codes_categoricals=True,
        ),
        _entry(
            "hist_gradient_boosting", "boosting", "HistGradientBoosting (scikit-learn)",
            "scikit-learn's histogram gradient boosting: close to LightGBM in accuracy, no extra dependency, "
            "native missing-value support and early stopping on larger data.",
            Estimator(
                classification="sklearn.ensemble.HistGradientBoostingClassifier",
                regression="sklearn.ensemble.HistGradientBoostingRegressor",
                params={"max_iter": 300, "learning_rate": 0.05, "random_state": 0},
                handles_missing=True, pip=["scikit-learn", "pandas"],
            ),
            prior=0.86, few_rows_bonus=-0.05, codes_categoricals=True,
        ),
        _entry(
            "gradient_boosting", "boosting", "GradientBoosting (scikit-learn)",
            "Classic gradient boosting with shallow trees: strong on small to mid-sized data with nonlinear "
            "interactions, but slow beyond ~100k rows and needs imputed inputs.",
            Estimator(
                classification="sklearn.ensemble.GradientBoostingClassifier",
                regression="sklearn.ensemble.GradientBoostingRegressor",
                params={"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3, "subsample": 0.8,
                        "random_state": 0},
                pip=["scikit-learn", "pandas"],
            ),
            prior=0.78, rows_limit=100_000, codes_categoricals=True,
        ),
        _entry(
            "random_forest", "forest", "RandomForest",
            "Averaged deep trees: robust with little tuning, hard to overfit, good on small and noisy data "
            "with nonlinear effects; a reliable member for an ensemble.",
            Estimator(
                classification="sklearn.ensemble.RandomForestClassifier",
                regression="sklearn.ensemble.RandomForestRegressor",
                params={"n_estimators": 300, "min_samples_leaf": 1, "n_jobs": -1, "random_state": 0},
                pip=["scikit-learn", "pandas"],
            ),
            prior=0.75, rows_limit=500_000, few_rows_bonus=0.1, codes_categoricals=True,
        ),
        _entry(
            "extra_trees", "forest", "ExtraTrees",
            "Extremely randomised trees: like a random forest but with random split points, so faster and "
            "lower-variance; often a diverse partner to boosting in an ensemble.",
            Estimator(
                classification="sklearn.ensemble.ExtraTreesClassifier",
                regression="sklearn.ensemble.ExtraTreesRegressor",
                params={"n_estimators": 300, "min_samples_leaf": 1, "n_jobs": -1, "random_state": 0},
                pip=["scikit-learn", "pandas"],
            ),
            prior=0.72, rows_limit=500_000, few_rows_bonus=0.1, codes_categoricals=True,
        ),
        _entry(
            "linear", "linear", "Linear model (LogisticRegression / Ridge)",
            "Regularised linear model on one-hot and standardised features: the best bet on few rows or many "
            "sparse features, fast at any size, and a calibrated baseline when effects are roughly additive.",
            Estimator(
                classification="sklearn.linear_model.LogisticRegression", regression="sklearn.linear_model.Ridge",
                params={"max_iter": 2000, "random_state": 0},
                needs_scaling=True, pip=["scikit-learn", "pandas"],
            ),
            prior=0.55, few_rows_bonus=0.35,
        ),
        _entry(
            "svm", "svm", "Support vector machine (SVC / SVR)",
            "RBF-kernel SVM on standardised features: strong on small, dense, mostly numeric data with smooth "
            "nonlinear boundaries; training cost grows quadratically, so avoid beyond ~10k rows.",
            Estimator(
                classification="sklearn.svm.SVC", regression="sklearn.svm.SVR",
                params={"C": 1.0, "kernel": "rbf", "gamma": "scale", "probability": True, "random_state": 0},
                needs_scaling=True, pip=["scikit-learn", "pandas"],
            ),
            prior=0.5, rows_limit=10_000, few_rows_bonus=0.3,
        ),
        _entry(
            "mlp", "neural_net", "Multilayer perceptron (scikit-learn)",
            "A small feed-forward network on standardised features: captures smooth nonlinear interactions on "
            "mostly numeric data with thousands of rows or more; sensitive to scaling and tuning.",
            Estimator(
                classification="sklearn.neural_network.MLPClassifier",
                regression="sklearn.neural_network.MLPRegressor",
                params={"hidden_layer_sizes": [128, 64], "alpha": 0.0001, "learning_rate_init": 0.001,
                        "max_iter": 500, "early_stopping": True, "random_state": 0},
                needs_scaling=True, pip=["scikit-learn", "pandas"],
            ),
            prior=0.5, rows_limit=300_000,
        ),
        _entry(
            "knn", "neighbors", "k-nearest neighbours",
            "Distance-weighted k-nearest neighbours on standardised features: no training, useful on small, "
            "low-dimensional numeric data where similar rows share targets; slow to predict on many rows.",
            Estimator(
                classification="sklearn.neighbors.KNeighborsClassifier",
                regression="sklearn.neighbors.KNeighborsRegressor",
                params={"n_neighbors": 15, "weights": "distance"},
                needs_scaling=True, pip=["scikit-learn", "pandas"],
            ),
            prior=0.4, rows_limit=20_000, few_rows_bonus=0.15,
        ),
        _entry(
            "naive_bayes", "naive_bayes", "Gaussian naive Bayes",
            "Gaussian naive Bayes: trains instantly and needs very few rows; a quick baseline for small "
            "classification tasks with roughly independent numeric features.",
            Estimator(
                classification="sklearn.naive_bayes.GaussianNB",
                params={"var_smoothing": 1e-9},
                pip=["scikit-learn", "pandas"],
            ),
            prior=0.3, few_rows_bonus=0.2,
        ),
    ]


def _entry(name: str, family: str, title: str, why: str, estimator: Estimator, **traits) -> Entry:
    task_types = [task for task in ("classification", "regression") if getattr(estimator, task)]
    # Linear, distance and network models need one-hot codes; trees split on ordinal codes just as well.
    one_hot = not traits.get("codes_categoricals", False)
    card = ModelCard(
        name=name, family=family, task_types=task_types, why=why, estimator=estimator,
        example_code=render_script(title, estimator, one_hot=one_hot), source="catalogue",
    )
    return Entry(card=card, **traits)


def score(entry: Entry, query: CardQuery) -> float:
    """How well a card fits the task described by the query; higher first. Unknown sizes (0) change nothing."""
    estimator = entry.card.estimator
    value = entry.prior
    if query.n_rows:
        # Advantage on few rows fades out between 1,000 and 10,000 rows.
        few = min(1.0, max(0.0, math.log10(10_000 / query.n_rows)))
        value += entry.few_rows_bonus * few
        if entry.rows_limit and query.n_rows > entry.rows_limit:
            value -= 0.3 * math.log2(query.n_rows / entry.rows_limit)
    if query.n_features > 500:
        # Distances lose meaning in many dimensions, while linear models thrive there.
        value += {"neighbors": -0.2, "linear": 0.1}.get(entry.card.family, 0.0)
    if query.has_missing and estimator.handles_missing:
        value += 0.1
    if query.has_categorical and entry.codes_categoricals:
        value += 0.05
    return round(value, 4)


class CatalogueBackend:
    """Ranks the built-in cards for a task.

    Options: `families` keeps only cards of those families (boosting, forest, linear, svm, neural_net, neighbors,
    naive_bayes); `exclude` drops cards by name or family. `cache_dir` is accepted and unused: nothing is fetched.
    """

    def __init__(self, options: dict | None = None, *, cache_dir=None):
        options = dict(options or {})
        unknown = sorted(set(options) - {"families", "exclude"})
        if unknown:
            raise TaskError(f"retrieval catalogue: unknown option {unknown[0]!r} (known: families, exclude)")
        self._entries = catalogue()
        self._families = _known(options.get("families"), "families", {e.card.family for e in self._entries})
        names = {e.card.family for e in self._entries} | {e.card.name for e in self._entries}
        self._exclude = _known(options.get("exclude"), "exclude", names) or set()

    def search(self, query: CardQuery, limit: int) -> list[ModelCard]:
        kept = [
            entry for entry in self._entries
            if query.task_type in entry.card.task_types
            and (self._families is None or entry.card.family in self._families)
            and not {entry.card.name, entry.card.family} & self._exclude
        ]
        ranked = sorted(((score(entry, query), entry.card.name, entry) for entry in kept), key=lambda t: (-t[0], t[1]))
        return [entry.card.model_copy(update={"score_hint": value, "source": "catalogue"})
                for value, _, entry in ranked[:max(limit, 0)]]


def _known(values, key: str, allowed: set[str]) -> set[str] | None:
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, (list, tuple, set)):
        raise TaskError(f"retrieval catalogue: option {key!r} must be a list of names, got {values!r}")
    unknown = sorted(set(values) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise TaskError(f"retrieval catalogue: unknown {key} entry {unknown[0]!r} (known: {known})")
    return set(values)


@hookimpl
def register_search_backends(register):
    register("catalogue", CatalogueBackend)
