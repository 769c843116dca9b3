"""The offline catalogue: which cards it returns, in what order, and that every card's example script really runs."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pluggy
import pytest
from sklearn.datasets import load_diabetes, load_wine

from core import hookspecs
from core.cards import CardQuery
from core.errors import TaskError
from retrieval import catalogue as catalogue_module
from retrieval.catalogue import CatalogueBackend, catalogue
from space import images

ROOT = Path(__file__).resolve().parents[1]
SCORE_LINE = re.compile(r"^Final Validation Performance: (\S+)$", re.MULTILINE)


def names(cards) -> list[str]:
    return [card.name for card in cards]


def search(task_type="classification", limit=20, options=None, **facts):
    return CatalogueBackend(options).search(CardQuery(task_type=task_type, **facts), limit)


# --- the cards themselves ---------------------------------------------------------------------------------------

def test_catalogue_covers_the_common_tabular_families():
    cards = {entry.card.name: entry.card for entry in catalogue()}
    assert {"lightgbm", "xgboost", "catboost", "hist_gradient_boosting", "random_forest", "extra_trees", "linear",
            "knn", "svm", "mlp", "gradient_boosting"} <= set(cards)
    assert cards["svm"].estimator.params["probability"] is True
    assert cards["linear"].estimator.classification == "sklearn.linear_model.LogisticRegression"
    assert cards["linear"].estimator.regression == "sklearn.linear_model.Ridge"


@pytest.mark.parametrize("entry", catalogue(), ids=lambda entry: entry.card.name)
def test_every_card_names_importable_classes_that_accept_its_params(entry):
    card, estimator = entry.card, entry.card.estimator
    assert card.why and card.example_code and estimator.pip
    classes = [_load(path) for path in (estimator.classification, estimator.regression) if path]
    assert len(classes) == len(card.task_types)
    # One params dict serves both classes; every key must mean something to at least one of them.
    assert set(estimator.params) <= set().union(*(_accepted(cls, estimator.params) for cls in classes))
    for cls in classes:
        if "random_state" in inspect.signature(cls).parameters:
            assert estimator.params.get("random_state") == 0, "results must be reproducible"


def _accepted(cls, params) -> set[str]:
    parameters = inspect.signature(cls).parameters
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters.values()):
        return set(params)  # LightGBM passes unknown keywords on to its booster
    return set(parameters)


def _load(path: str):
    if images.scripted(path):  # a class the script defines itself: built from the source rendered into scripts
        return images.scripted_class(path)
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


# --- ranking and filtering --------------------------------------------------------------------------------------

def test_search_returns_only_cards_for_the_task_type():
    regression = search("regression")
    assert "naive_bayes" not in names(regression)
    assert all("regression" in card.task_types for card in regression)
    assert "naive_bayes" in names(search("classification"))


def test_gradient_boosting_leads_on_large_mixed_data_and_kernel_models_sink():
    ranked = names(search(n_rows=500_000, n_features=40, has_categorical=True, has_missing=True))
    assert ranked[0] == "lightgbm"
    assert ranked[1] == "hist_gradient_boosting"
    assert set(ranked[-2:]) == {"knn", "svm"}


def test_linear_model_rises_when_rows_are_few():
    few = names(search(n_rows=200, n_features=10))
    many = names(search(n_rows=200_000, n_features=10))
    assert few.index("linear") < many.index("linear")
    assert few[0] == "linear"
    assert few.index("svm") < many.index("svm")


def test_missing_values_favour_models_that_accept_nan():
    def hint(cards, name):
        return next(card.score_hint for card in cards if card.name == name)

    clean = search(n_rows=5_000)
    missing = search(n_rows=5_000, has_missing=True)
    assert hint(missing, "hist_gradient_boosting") > hint(clean, "hist_gradient_boosting")
    assert hint(missing, "random_forest") == hint(clean, "random_forest")


def test_results_are_ranked_deterministic_and_marked_as_catalogue():
    first = search("regression", n_rows=3_000, n_features=12, has_categorical=True)
    second = search("regression", n_rows=3_000, n_features=12, has_categorical=True)
    assert first == second
    assert first[0].score_hint == max(card.score_hint for card in first)
    assert {card.source for card in first} == {"catalogue"}


def test_a_family_already_taken_ranks_its_next_card_lower_so_the_first_cards_are_diverse():
    # wilms-relapse's shape: a few thousand rows, five columns, categoricals; four boosting cards used to lead
    cards = search("classification", n_rows=3_222, n_features=5, has_categorical=True)
    first_four = [card.family for card in cards[:4]]
    boosting = [card for card in cards if card.family == "boosting"]

    assert len(set(first_four)) >= 3 and "linear" in first_four
    assert [c.score_hint for c in boosting] == sorted((c.score_hint for c in boosting), reverse=True)
    assert cards[0].name == "lightgbm"  # the best card still comes first


def test_limit_caps_the_number_of_cards():
    assert len(search(limit=3)) == 3
    assert search(limit=0) == []


def test_families_option_keeps_only_those_families():
    cards = search(options={"families": ["boosting", "linear"]})
    assert set(names(cards)) == {"lightgbm", "xgboost", "catboost", "hist_gradient_boosting", "gradient_boosting",
                                 "linear"}


def test_exclude_option_drops_cards_by_name_or_family():
    cards = names(search(options={"exclude": ["lightgbm", "forest"]}))
    assert "lightgbm" not in cards
    assert "random_forest" not in cards and "extra_trees" not in cards
    assert "hist_gradient_boosting" in cards


@pytest.mark.parametrize("options, message", [
    ({"family": ["linear"]}, "unknown option 'family'"),
    ({"families": ["trees"]}, "unknown families entry 'trees'"),
    ({"exclude": "knn"}, "must be a list"),
])
def test_bad_options_raise_one_clear_task_error(options, message):
    with pytest.raises(TaskError, match=message):
        CatalogueBackend(options)


def test_plugin_registers_the_catalogue_backend():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(catalogue_module)
    registered = []
    manager.hook.register_search_backends(register=lambda name, factory: registered.append((name, factory)))
    assert registered == [("catalogue", CatalogueBackend)]
    backend = registered[0][1]({}, cache_dir=Path("unused"))
    assert backend.search(CardQuery(task_type="regression"), 1)


# --- every card's example script, run for real ------------------------------------------------------------------

def classification_frame() -> tuple[pd.DataFrame, str]:
    """Wine with string labels, an added categorical column and holes, so scripts must encode and impute."""
    wine = load_wine(as_frame=True)
    frame = wine.data.copy()
    frame["label"] = [f"cultivar_{k}" for k in wine.target]
    frame["colour_band"] = pd.cut(frame["color_intensity"], 3, labels=["pale", "medium", "deep"]).astype(str)
    return _punch_holes(frame, ["alcohol", "magnesium", "colour_band"]), "label"


def regression_frame() -> tuple[pd.DataFrame, str]:
    diabetes = load_diabetes(as_frame=True, scaled=False)
    frame = diabetes.data.copy()
    frame["progression"] = diabetes.target
    frame["age_band"] = pd.cut(frame["age"], [0, 35, 55, 120], labels=["young", "middle", "older"]).astype(str)
    return _punch_holes(frame, ["bmi", "bp", "age_band"]), "progression"


def _punch_holes(frame: pd.DataFrame, columns: list[str], share: float = 0.08) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = frame.astype({column: object for column in columns if frame[column].dtype == "str"})
    for column in columns:
        frame.loc[rng.random(len(frame)) < share, column] = np.nan
    return frame


def lay_out_contract_folder(folder: Path, frame: pd.DataFrame, target: str) -> dict[str, pd.DataFrame]:
    """The working folder a solution script runs in: ./input/{train,valid,test,sample_submission}.csv."""
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.insert(0, "row_id", np.arange(1000, 1000 + len(frame)))
    n_train, n_valid = int(len(frame) * 0.6), int(len(frame) * 0.2)
    parts = {
        "train": frame.iloc[:n_train],
        "valid": frame.iloc[n_train:n_train + n_valid],
        "test": frame.iloc[n_train + n_valid:].drop(columns=[target]),
    }
    parts["sample_submission"] = pd.DataFrame({"row_id": parts["test"]["row_id"], target: frame[target].iloc[0]})
    (folder / "input").mkdir(parents=True)
    for name, part in parts.items():
        part.to_csv(folder / "input" / f"{name}.csv", index=False)
    return parts


def run_card_script(code: str, folder: Path) -> subprocess.CompletedProcess:
    (folder / "solution.py").write_text(code)
    return subprocess.run([sys.executable, "solution.py"], cwd=folder, check=False, capture_output=True, text=True,
                          timeout=120)


# the image recipes' examples read image folders (tests/test_image_recipes.py runs them on an image competition) and
# a text-only card's reads a text column (tests/test_text_recipes.py runs it on a text competition)
CASES = [(entry.card, task) for entry in catalogue() for task in entry.card.task_types
         if not entry.needs_images and not entry.text_only]


@pytest.mark.parametrize("card, task", CASES, ids=[f"{card.name}-{task}" for card, task in CASES])
def test_card_example_script_follows_the_solution_contract(card, task, tmp_path):
    frame, target = classification_frame() if task == "classification" else regression_frame()
    parts = lay_out_contract_folder(tmp_path, frame, target)

    result = run_card_script(card.example_code, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    for output, rows in [("val_predictions.csv", parts["valid"]), ("submission.csv", parts["test"])]:
        written = pd.read_csv(tmp_path / output)
        assert list(written.columns) == list(parts["sample_submission"].columns)
        assert written["row_id"].tolist() == rows["row_id"].tolist()
        assert written[target].notna().all()
    scores = SCORE_LINE.findall(result.stdout)
    assert len(scores) == 1, result.stdout
    score = float(scores[0])
    valid = parts["valid"][target]
    if task == "classification":
        assert set(pd.read_csv(tmp_path / "submission.csv")[target]) <= set(frame[target])
        assert score >= 0.8, f"accuracy {score} on wine is barely better than chance"
    else:
        # Better than predicting the mean, or the script is not learning.
        assert 0 < score < valid.std(ddof=0), f"RMSE {score} vs target std {valid.std(ddof=0)}"


def test_cards_whose_library_is_not_installed_are_left_out(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "catboost" else real(name, *a))
    cards = names(search(n_rows=5_000))
    assert "catboost" not in cards and "xgboost" in cards and "lightgbm" in cards
