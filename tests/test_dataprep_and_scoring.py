"""The one yardstick: the prepared input folders every script sees, and the framework's scoring of predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from core.dataprep import SYNTHETIC_ID, _column_info, prepare_data
from core.scoring import score_predictions
from core.task import load_task


def write_task(tmp_path, frame: pd.DataFrame, target: str, metric: str, *, id_col: str | None = "id",
               search_rows: int = 30000, folds: int | str = "auto"):
    test = frame.drop(columns=target).iloc[:20]
    frame.iloc[20:].to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    data = {"train": "train.csv", "test": "test.csv", "target": target}
    if id_col:
        data["id"] = id_col
    (tmp_path / "task.yaml").write_text(yaml.safe_dump({
        "name": "t", "goal": "predict", "data": data, "metric": metric,
        "budget": {"search_rows": search_rows}, "validation": {"folds": folds}, "output": "out"}))
    return tmp_path / "task.yaml"


def classification_frame(n=220, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(n) + 500, "x": rng.normal(size=n),
                         "colour": rng.choice(["red", "blue"], size=n),
                         "label": rng.choice(["b", "a", "c"], size=n, p=[0.5, 0.3, 0.2])})


def prepared(tmp_path, registry, frame, target, metric, **kw):
    task = load_task(write_task(tmp_path, frame, target, metric, **kw), metrics=registry.metrics)
    m = registry.metrics[metric]
    return task, prepare_data(task, maximize=m.maximize, proba=m.proba)


def test_the_split_is_fixed_stratified_and_the_truth_is_kept_outside_the_input_folders(tmp_path, registry):
    task, data = prepared(tmp_path, registry, classification_frame(), "label", "accuracy", search_rows=60, folds=1)
    search_train = pd.read_csv(data.search_dir / "train.csv")
    full_train = pd.read_csv(data.full_dir / "train.csv")
    valid = pd.read_csv(data.full_dir / "valid.csv")
    assert len(search_train) == 60 and len(valid) == 40  # 200 rows, 20% held out
    assert set(search_train["id"]) < set(full_train["id"])  # the search sees a capped subsample
    assert set(valid["id"]).isdisjoint(search_train["id"])
    # the final run learns from every labelled row, the validation rows last
    assert len(full_train) == 200 and list(full_train["id"].tail(40)) == list(valid["id"])
    pd.testing.assert_frame_equal(valid, pd.read_csv(data.search_dir / "valid.csv"))  # same rows at both fidelities
    assert valid["label"].value_counts(normalize=True)["b"] == pytest.approx(0.5, abs=0.1)
    assert data.truth.parent not in (data.search_dir, data.full_dir)
    assert sorted(p.name for p in data.full_dir.iterdir()) == ["sample_submission.csv", "test.csv", "train.csv",
                                                              "valid.csv"]
    assert data.context.classes == ["a", "b", "c"]
    # preparing again with unchanged data reuses the folders (a resumed run sees the same split)
    again = prepare_data(task, maximize=True, proba=False)
    assert (again.full_dir / "valid.csv").stat().st_mtime_ns == (data.full_dir / "valid.csv").stat().st_mtime_ns


def test_on_small_data_the_search_rows_are_split_into_folds_and_every_validation_row_chooses_the_final(
        tmp_path, registry):
    task, data = prepared(tmp_path, registry, classification_frame(), "label", "accuracy")
    search = pd.read_csv(data.search_dir / "train.csv")
    held_out = pd.read_csv(data.selection_truth)  # the validation rows
    assert len(held_out) == 40 and set(held_out["id"]).isdisjoint(search["id"])
    folds = sorted((data.search_dir / "folds").iterdir())
    assert [f.name for f in folds] == ["0", "1", "2"]  # auto: 3 folds for a few hundred rows
    predicted = []
    for fold in folds:
        train, valid = pd.read_csv(fold / "train.csv"), pd.read_csv(fold / "valid.csv")
        own = valid[~valid["id"].isin(held_out["id"])]
        assert set(own["id"]).isdisjoint(train["id"]) and set(train["id"]) | set(own["id"]) == set(search["id"])
        assert set(held_out["id"]) <= set(valid["id"])  # every fold predicts every validation row
        predicted += list(own["id"])
    assert sorted(predicted) == sorted(search["id"])  # each search row is held out by exactly one fold
    assert sorted(pd.read_csv(data.truth)["id"]) == sorted(search["id"])
    # the top folders' valid.csv lists every row a merged prediction covers; the final run keeps the folds aside
    for top in (data.search_dir, data.full_dir):
        assert sorted(pd.read_csv(top / "valid.csv")["id"]) == sorted([*search["id"], *held_out["id"]])
    assert sorted(p.name for p in (data.full_dir / "validation_folds").iterdir()) == ["0", "1", "2"]


def test_a_task_without_an_id_column_gets_row_ids_and_a_synthesised_sample(tmp_path, registry):
    frame = classification_frame().drop(columns="id")
    _, data = prepared(tmp_path, registry, frame, "label", "accuracy", id_col=None)
    sample = pd.read_csv(data.full_dir / "sample_submission.csv")
    assert list(sample.columns) == [SYNTHETIC_ID, "label"] and len(sample) == 20
    assert data.context.id_column == SYNTHETIC_ID


def test_numeric_class_labels_are_ordered_numerically(tmp_path, registry):
    frame = classification_frame()
    frame["label"] = np.where(frame["label"] == "a", 10, 2)
    _, data = prepared(tmp_path, registry, frame, "label", "roc_auc")
    assert data.context.classes == ["2", "10"]  # the positive class of a probability is the last one


@pytest.mark.parametrize("values, kind", [
    (["2020-01-01", "2021-03-04 10:00", "2019-12-31"], "datetime"),
    (["Adelie", "Gentoo", "Chinstrap"], "categorical"),
    (["a long free text answer that goes on and on, number " + str(i) for i in range(15)], "text"),
])
def test_column_kinds_are_inferred_from_the_values(values, kind):
    assert _column_info(pd.Series(values * (15 // len(values)), name="c")).dtype == kind


def write_predictions(data, column_values: dict) -> object:
    truth = pd.read_csv(data.truth)
    frame = pd.DataFrame({data.context.id_column: truth[data.context.id_column], **column_values})
    path = data.full_dir.parent / "pred.csv"
    frame.to_csv(path, index=False)
    return path, truth


def test_label_predictions_are_scored_on_the_validation_rows_whatever_their_order(tmp_path, registry):
    _, data = prepared(tmp_path, registry, classification_frame(), "label", "accuracy")
    truth = pd.read_csv(data.truth)
    labels = truth["label"].to_numpy().copy()
    labels[:10] = "zzz"  # ten wrong
    path, _ = write_predictions(data, {"label": labels})
    shuffled = pd.read_csv(path).sample(frac=1, random_state=1)
    shuffled.to_csv(path, index=False)
    score, problem = score_predictions(path, data.truth, data.context, registry.metrics["accuracy"])
    assert problem == "" and score == pytest.approx(1 - 10 / len(truth))


def test_binary_probabilities_score_the_positive_class(tmp_path, registry):
    frame = classification_frame()
    frame["label"] = np.where(frame["label"] == "a", "yes", "no")
    _, data = prepared(tmp_path, registry, frame, "label", "roc_auc")
    truth = pd.read_csv(data.truth)
    path, _ = write_predictions(data, {"label": (truth["label"] == "yes").astype(float)})
    assert score_predictions(path, data.truth, data.context, registry.metrics["roc_auc"]) == (1.0, "")


def test_wide_probability_columns_are_scored_per_class(tmp_path, registry):
    frame = classification_frame()
    task_path = write_task(tmp_path, frame, "label", "logloss")
    pd.DataFrame({"id": frame["id"].iloc[:20], "a": 0.3, "b": 0.5, "c": 0.2}).to_csv(
        tmp_path / "sample_submission.csv", index=False)
    spec = yaml.safe_load(task_path.read_text())
    spec["data"]["sample_submission"] = "sample_submission.csv"
    task_path.write_text(yaml.safe_dump(spec))
    task = load_task(task_path, metrics=registry.metrics)
    data = prepare_data(task, maximize=False, proba=True)
    truth = pd.read_csv(data.truth)
    onehot = {c: (truth["label"] == c).astype(float) * 0.97 + 0.01 for c in ["a", "b", "c"]}
    path, _ = write_predictions(data, onehot)
    score, problem = score_predictions(path, data.truth, data.context, registry.metrics["logloss"])
    assert problem == "" and score == pytest.approx(-np.log(0.98), abs=1e-3)


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.drop(columns="label"), "expected"),
    (lambda f: f.iloc[1:], "lacks 1 of the"),
    (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate ids"),
    (lambda f: f.assign(label=None), "missing values"),
])
def test_bad_predictions_get_no_score_and_a_reason(tmp_path, registry, mutate, message):
    _, data = prepared(tmp_path, registry, classification_frame(), "label", "accuracy")
    path, truth = write_predictions(data, {})
    mutate(truth).to_csv(path, index=False)
    score, problem = score_predictions(path, data.truth, data.context, registry.metrics["accuracy"])
    assert score is None and message in problem


def test_merging_the_folds_predictions_keeps_each_held_out_row_and_votes_or_averages_the_shared_ones():
    from core.folds import merge_predictions

    # ids 1, 5, 6 were held out by one fold each; ids 2-4 (selection or test rows) every fold predicted
    folds = [pd.DataFrame({"id": [1, 2, 3, 4], "label": ["a", "b", "c", "a"], "p": [0.1, 0.2, 0.3, 0.4]}),
             pd.DataFrame({"id": [5, 2, 3, 4], "label": ["x", "c", "c", "b"], "p": [0.5, 0.5, 0.6, 0.7]}),
             pd.DataFrame({"id": [6, 2, 3, 4], "label": ["z", "c", "d", "c"], "p": [0.9, 0.8, 0.9, 1.0]})]

    merged = merge_predictions(folds)

    assert merged["id"].tolist() == [1, 2, 3, 4, 5, 6]
    assert merged["label"].tolist() == ["a", "c", "c", "a", "x", "z"]  # id 4: a three-way tie goes to the first
    assert merged["p"].round(6).tolist() == [0.1, 0.5, 0.6, 0.7, 0.5, 0.9]
