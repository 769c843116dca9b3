"""The offline `catalogue` search backend: built-in cards for common tabular and text models and the image recipes
(a small CNN, LightGBM on pixel features), ranked against the task.

It needs no network, so a run always has candidates to draft from, whatever other backends find.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

from core.cards import CardQuery, Estimator, ModelCard
from core.errors import TaskError
from core.hookspecs import hookimpl
from retrieval.card_script import render_script
from space import draft, images


@dataclass(frozen=True)
class Entry:
    """A card plus what the ranking knows about it."""

    card: ModelCard
    prior: float  # how strong the model usually is on tabular data, all else equal
    rows_limit: int | None = None  # beyond this many rows training gets slow or the model gains nothing
    few_rows_bonus: float = 0.0  # how much better it holds up than the rest on a few hundred rows
    codes_categoricals: bool = False  # splits on ordinal codes, so categorical columns cost it nothing
    text_bonus: float = -0.3  # on text tasks (half on mixed ones); dense-only models see hashed tokens, not TF-IDF
    text_only: bool = False  # offered only on text tasks whose every feature column is free text
    image_bonus: float = 0.0  # how much better (or worse) it does on pixel columns than its prior says
    needs_images: bool = False  # an image recipe: offered only when the rows have images
    image_twin: bool = False  # an image recipe drafts the same script when the rows have images: left out then


FAMILY_PENALTY = 0.1  # how much each card already taken from a family lowers the next one's rank


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
            prior=0.9, few_rows_bonus=-0.05, codes_categoricals=True, text_bonus=0.0, image_twin=True,  # lightgbm_pixels
        ),
        *_image_entries(),
        _entry(
            "xgboost", "boosting", "XGBoost",
            "XGBoost's gradient-boosted trees (CPU histogram method): as strong as LightGBM on most tabular data, "
            "depth-wise trees that differ from LightGBM's leaf-wise ones (a good blend partner), native missing "
            "values, early stopping on held-out rows.",
            Estimator(
                classification="xgboost.XGBClassifier", regression="xgboost.XGBRegressor",
                params={"n_estimators": 500, "learning_rate": 0.05, "max_depth": 6, "min_child_weight": 1.0,
                        "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 1.0, "random_state": 0,
                        "verbosity": 0},
                handles_missing=True, pip=["xgboost-cpu", "scikit-learn", "pandas"],
            ),
            prior=0.85, few_rows_bonus=-0.05, codes_categoricals=True,
            text_bonus=-0.1,  # reads TF-IDF, but ten times slower than LightGBM on it
        ),
        _entry(
            "catboost", "boosting", "CatBoost",
            "CatBoost's ordered boosting on symmetric trees: robust defaults that overfit little on small and "
            "mid-sized data, strong with categorical codes and noisy targets; slower to train than LightGBM.",
            Estimator(
                classification="catboost.CatBoostClassifier", regression="catboost.CatBoostRegressor",
                params={"iterations": 800, "learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0, "random_state": 0,
                        "logging_level": "Silent", "allow_writing_files": False},
                handles_missing=True, pip=["catboost", "scikit-learn", "pandas"],
            ),
            prior=0.84, rows_limit=300_000, codes_categoricals=True, image_bonus=-0.3,  # slow on many columns
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
            prior=0.78, rows_limit=100_000, codes_categoricals=True, image_bonus=-0.4,  # slow on many columns
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
            prior=0.75, rows_limit=500_000, few_rows_bonus=0.1, codes_categoricals=True, image_bonus=0.1,
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
            prior=0.72, rows_limit=500_000, few_rows_bonus=0.1, codes_categoricals=True, image_bonus=0.1,
        ),
        _entry(
            "linear", "linear", "Linear model (LogisticRegression / Ridge)",
            "Regularised linear model on one-hot and standardised features (and spline bases of the numeric ones on "
            "fewer than 2,000 rows): the best bet on few rows, where trees overfit, or many sparse features; fast "
            "at any size, and a calibrated baseline when effects are roughly additive.",
            Estimator(
                classification="sklearn.linear_model.LogisticRegression", regression="sklearn.linear_model.Ridge",
                params={"max_iter": 2000, "random_state": 0},
                needs_scaling=True, pip=["scikit-learn", "pandas"],
            ),
            prior=0.55, few_rows_bonus=0.5,  # with splines on fewer than 2,000 rows, ahead of the trees
            text_bonus=0.6,  # on TF-IDF n-grams: the classic text model, fast on a wide sparse matrix
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
            prior=0.5, rows_limit=10_000, few_rows_bonus=0.3, image_bonus=0.3,
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
        _entry(
            "multinomial_nb", "naive_bayes", "Multinomial naive Bayes on TF-IDF",
            "Multinomial naive Bayes on TF-IDF word and character n-grams of free text: fits in a blink, needs few "
            "rows, and a strong partner for a linear model in a blend; needs non-negative features, so only for "
            "tasks whose features are all free text.",
            Estimator(
                classification="sklearn.naive_bayes.MultinomialNB",
                params={"alpha": 0.3},
                pip=["scikit-learn", "pandas"],
            ),
            prior=0.4, few_rows_bonus=0.2, text_bonus=0.6, text_only=True,
        ),
    ]


def _image_entries() -> list[Entry]:
    """The image recipes: the draft of any card turns the image step on for a task with images, these two are the
    ones made for it. Ranked first on image tasks: on digits-images a CNN reached 0.9 test accuracy in a 10 s slice
    where LightGBM on pixel features reached 0.65 to 0.74 and on raw RGB pixels 0.47."""
    return [
        _entry(
            "image_cnn", "convnet", "Small CNN (torch, CPU)",
            "A small convolutional network on the images (32x32 colour pixels by default): three convolution blocks "
            "with batch norm, dropout, random shifts and early stopping on held-out training rows, trained within "
            "a time slice; learns shapes wherever they are in the image, far beyond trees on pixels.",
            Estimator(classification=images.CNN_CLASSIFIER, regression=images.CNN_REGRESSOR,
                      params={**images.CNN_DEFAULTS, "random_state": 0}, handles_missing=True,
                      pip=["torch", "pillow", "scikit-learn", "pandas"]),
            prior=0.3, image_bonus=1.0, needs_images=True, example=images.example_script("cnn"),
        ),
        _entry(
            "lightgbm_pixels", "boosting", "LightGBM on pixel features",
            "Gradient-boosted trees on each image's downscaled pixels (16x16, as contrast to the image's median "
            "colour) and colour histograms: fast, robust, a good partner to a CNN in a blend, and the image "
            "step's size, colours and histograms are easy to refine.",
            Estimator(classification="lightgbm.LGBMClassifier", regression="lightgbm.LGBMRegressor",
                      # pixels need few histogram bins: 63 instead of 255 fitted digits-images 2.4 times faster
                      params={"n_estimators": 500, "learning_rate": 0.05, "num_leaves": 31, "subsample": 0.8,
                              "subsample_freq": 1, "colsample_bytree": 0.8, "max_bin": 63, "random_state": 0,
                              "verbose": -1},
                      handles_missing=True, pip=["lightgbm", "pillow", "scikit-learn", "pandas"]),
            prior=0.9, image_bonus=0.2, needs_images=True, example=images.example_script("lightgbm"),
        ),
    ]


def _entry(name: str, family: str, title: str, why: str, estimator: Estimator, example: str = "",
           **traits) -> Entry:
    task_types = [task for task in ("classification", "regression") if getattr(estimator, task)]
    # Linear, distance and network models need one-hot codes; trees split on ordinal codes just as well.
    one_hot = not traits.get("codes_categoricals", False)
    example = example or render_script(title, estimator, one_hot=one_hot)
    if (estimator.classification or "").startswith("xgboost."):
        example = _with_class_codes(example)
    if (estimator.classification or "").startswith("catboost."):
        example = _with_flat_predictions(example)
    card = ModelCard(
        name=name, family=family, task_types=task_types, why=why, estimator=estimator,
        example_code=example, source="catalogue",
    )
    if traits.get("text_only"):  # the table template would one-hot the text: show the draft on a text task instead
        card.example_code = draft.text_example(card) or example
    return Entry(card=card, **traits)


_FIT_LINES = """\
        pipeline.fit(rows[features], rows[target])
        val_predictions[target] = pipeline.predict(valid[features])
        submission[target] = pipeline.predict(test[features])
"""
_FIT_ON_CODES = """\
        if classification:  # XGBoost's classifier takes class codes 0..k-1: fit on codes, map predictions back
            labels, codes = np.unique(rows[target], return_inverse=True)
            pipeline.fit(rows[features], codes)
            val_predictions[target] = labels[pipeline.predict(valid[features])]
            submission[target] = labels[pipeline.predict(test[features])]
        else:
            pipeline.fit(rows[features], rows[target])
            val_predictions[target] = pipeline.predict(valid[features])
            submission[target] = pipeline.predict(test[features])
"""


def _with_class_codes(code: str) -> str:
    """The card template's script, fitting the classifier on class codes (XGBoost rejects string labels)."""
    if _FIT_LINES not in code:
        raise AssertionError("retrieval.card_script's fit lines changed: update catalogue._with_class_codes")
    return code.replace(_FIT_LINES, _FIT_ON_CODES)


def _with_flat_predictions(code: str) -> str:
    """The card template's script, flattening predictions (CatBoost's classifier predicts a column of labels)."""
    if _FIT_LINES not in code:
        raise AssertionError("retrieval.card_script's fit lines changed: update catalogue._with_flat_predictions")
    return code.replace(_FIT_LINES, _FIT_LINES.replace("= pipeline.predict(valid[features])",
                                                       "= np.ravel(pipeline.predict(valid[features]))")
                        .replace("= pipeline.predict(test[features])", "= np.ravel(pipeline.predict(test[features]))"))


def installed(entry: Entry) -> bool:
    """Whether every library the card's classes come from is installed here (CatBoost is an optional extra)."""
    estimator = entry.card.estimator
    roots = {images.library_of(path) for path in (estimator.classification, estimator.regression) if path}
    return all(importlib.util.find_spec(root) is not None for root in roots)


def score(entry: Entry, query: CardQuery) -> float:
    """How well a card fits the task described by the query; higher first. Unknown sizes (0) change nothing."""
    estimator = entry.card.estimator
    value = entry.prior
    if query.modality == "image":  # pixel columns: the few-rows and column traits below are about table columns
        value += entry.image_bonus
        if query.n_rows and entry.rows_limit and query.n_rows > entry.rows_limit:
            value -= 0.3 * math.log2(query.n_rows / entry.rows_limit)
        return round(value, 4)
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
    if query.text_columns and query.modality in ("text", "mixed"):
        value += entry.text_bonus * (1.0 if query.modality == "text" else 0.5)
    return round(value, 4)


def diverse_order(scored: list[tuple[float, Entry]]) -> list[tuple[float, Entry]]:
    """The cards best first, each later card of a family already taken counted ``FAMILY_PENALTY`` lower per card
    taken before it (the scores returned are the cards' own). Four boosting libraries are near-equals on most
    tables: on wilms-relapse (3,222 rows, five columns) the first four were all boosting, and the linear card that
    few rows favour never ran, so the ensemble had nothing different to combine."""
    left = sorted(scored, key=lambda t: (-t[0], t[1].card.name))
    taken: list[tuple[float, Entry]] = []
    while left:
        families = [e.card.family for _, e in taken]
        best = max(left, key=lambda t: (t[0] - FAMILY_PENALTY * families.count(t[1].card.family), -left.index(t)))
        left.remove(best)
        taken.append(best)
    return taken


class CatalogueBackend:
    """Ranks the built-in cards for a task.

    Cards whose library is not installed (CatBoost and XGBoost are optional) are left out.
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
            and not (query.has_images and entry.image_twin)
            and (query.has_images or not entry.needs_images)
            and (self._families is None or entry.card.family in self._families)
            and not {entry.card.name, entry.card.family} & self._exclude
            and (not entry.text_only or (query.modality == "text" and 0 < query.text_columns == query.n_features))
            and installed(entry)
        ]
        ranked = diverse_order([(score(entry, query), entry) for entry in kept])
        return [entry.card.model_copy(update={"score_hint": value, "source": "catalogue"})
                for value, entry in ranked[:max(limit, 0)]]


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
