"""Several targets at once (multi-label, multi-target regression): inferred from a sample whose prediction columns
are training columns, split and scored per column (the mean, as MLE-bench's mean column-wise AUC), and predicted by
the heuristic's scripts, one model per target, run for real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.metrics import mean_squared_error, roc_auc_score

from core.baseline import constant_submission
from core.dataprep import prepare_data
from core.errors import TaskError
from core.executor import ExecutorOptions, RunRequest, Status
from core.local_executor import LocalExecutor
from core.scoring import score_predictions
from core.task import load_task
from plugins.heuristic import make_heuristic_policy
from retrieval.catalogue import CatalogueBackend


def penguin_folder(tmp_path, targets: dict, metric: str, placeholder, drop: tuple = ()) -> tuple:
    """An MLE-bench folder of the penguins with ``targets`` as columns (``drop``: the columns they come from), the
    sample naming them all."""
    frame = load_penguins().dropna(subset=["sex", "body_mass_g"]).reset_index(drop=True)
    frame = frame.assign(**{name: make(frame) for name, make in targets.items()}).drop(columns=list(drop))
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.insert(0, "id", np.arange(1, len(frame) + 1))
    names = list(targets)
    test, train = frame.iloc[:60], frame.iloc[60:]
    folder = tmp_path / "penguins"
    folder.mkdir()
    train.to_csv(folder / "train.csv", index=False)
    test.drop(columns=names).to_csv(folder / "test.csv", index=False)
    test[["id"]].assign(**{n: placeholder for n in names}).to_csv(folder / "sample_submission.csv", index=False)
    (folder / "description.md").write_text("Predict every target column.")
    (folder / "task.yaml").write_text(f"data: {{dir: .}}\nmetric: {metric}\nvalidation: {{folds: 3}}\n")
    return folder, test[["id", *names]]


@pytest.fixture
def multi_label(tmp_path):
    return penguin_folder(tmp_path, {"adelie": lambda f: (f["species"] == "Adelie").astype(int),
                                     "male": lambda f: (f["sex"] == "male").astype(int)}, "roc_auc", 0.5,
                          drop=("species", "sex"))


@pytest.fixture
def multi_regression(tmp_path):
    return penguin_folder(tmp_path, {"body_mass_g": lambda f: f["body_mass_g"],
                                     "flipper_length_mm": lambda f: f["flipper_length_mm"]}, "rmse", 0)


def prepared(folder, registry):
    task = load_task(folder / "task.yaml", metrics=registry.metrics)
    metric = registry.metrics[task.metric]
    return task, prepare_data(task, maximize=metric.maximize, proba=metric.proba), metric


def test_a_sample_whose_prediction_columns_are_training_columns_is_a_task_with_several_targets(multi_label,
                                                                                             registry):
    task, data, _ = prepared(multi_label[0], registry)
    assert task.targets == ("adelie", "male") and task.target == "adelie"
    ctx = data.context
    assert ctx.targets == ["adelie", "male"] and ctx.output_kind() == "multi" and ctx.classes == ["0", "1"]
    assert {"adelie", "male"}.isdisjoint(c.name for c in ctx.columns)
    assert list(pd.read_csv(data.truth).columns) == ["id", "adelie", "male"]


def test_several_targets_are_scored_each_on_its_own_and_averaged(multi_label, registry, tmp_path):
    task, data, metric = prepared(multi_label[0], registry)
    truth = pd.read_csv(data.truth)
    rng = np.random.default_rng(0)
    guess = truth.assign(adelie=truth["adelie"] * 0.6 + rng.random(len(truth)) * 0.5,
                         male=rng.random(len(truth)))
    guess.to_csv(tmp_path / "val.csv", index=False)
    score, problem = score_predictions(tmp_path / "val.csv", data.truth, data.context, metric)
    expected = np.mean([roc_auc_score(truth[c], guess[c]) for c in ("adelie", "male")])
    assert problem == "" and score == pytest.approx(expected)
    guess.drop(columns="male").to_csv(tmp_path / "val.csv", index=False)
    assert score_predictions(tmp_path / "val.csv", data.truth, data.context, metric)[0] is None


def test_the_constant_baseline_fills_each_target_with_its_own_prior(multi_label, registry):
    _, data, _ = prepared(multi_label[0], registry)
    train = pd.read_csv(data.full_dir / "train.csv")
    out = constant_submission(data.full_dir, data.context)
    assert out["adelie"].iloc[0] == pytest.approx(train["adelie"].mean())
    assert out["male"].iloc[0] == pytest.approx(train["male"].mean())


def draft_and_run(folder, registry, tmp_path, card_name: str):
    task, data, metric = prepared(folder, registry)
    ctx = data.context
    cards = {c.name: c for c in CatalogueBackend().search(ctx.card_query(), 50)}
    code = make_heuristic_policy({}).write_initial(ctx, cards[card_name])
    assert "MultiOutput" in code and "TARGETS" in code
    executor = LocalExecutor(ExecutorOptions(workers=2, cache=False), out_dir=tmp_path / f"runs-{card_name}")
    search = executor.run(RunRequest(code=code, input_dir=data.search_dir, timeout=120, id_column="id"))
    assert search.status == Status.OK, search.stderr_tail[-2000:]
    score, problem = score_predictions(search.val_predictions, data.truth, ctx, metric)
    assert problem == ""
    final = executor.run(RunRequest(code=code, input_dir=data.full_dir, timeout=120, id_column="id",
                                    check_submission=True))
    assert final.status == Status.OK, final.stderr_tail[-2000:]
    return score, pd.read_csv(final.workdir / "submission.csv"), search


@pytest.mark.parametrize("card", ["linear", "lightgbm", "random_forest"])
def test_the_heuristic_draft_predicts_each_label_with_a_model_of_its_own(card, multi_label, registry, tmp_path):
    folder, answers = multi_label
    score, submission, search = draft_and_run(folder, registry, tmp_path, card)
    assert score > 0.85  # mean column-wise AUC on the search's held-out rows
    assert search.reported_score == pytest.approx(score, abs=0.02)  # the script scores as the framework does
    merged = answers.merge(submission, on="id", suffixes=("", "_pred"))
    assert len(merged) == len(answers)
    assert np.mean([roc_auc_score(merged[c], merged[f"{c}_pred"]) for c in ("adelie", "male")]) > 0.85


def test_the_heuristic_draft_predicts_several_values_and_beats_the_medians(multi_regression, registry, tmp_path):
    folder, answers = multi_regression
    score, submission, _ = draft_and_run(folder, registry, tmp_path, "lightgbm")
    merged = answers.merge(submission, on="id", suffixes=("", "_pred"))
    for column in ("body_mass_g", "flipper_length_mm"):
        model = mean_squared_error(merged[column], merged[f"{column}_pred"]) ** 0.5
        constant = mean_squared_error(merged[column], np.full(len(merged), merged[column].median())) ** 0.5
        assert model < 0.8 * constant, column


def test_a_probability_metric_over_targets_with_more_than_two_classes_is_refused_in_one_line(tmp_path, registry):
    folder, _ = penguin_folder(tmp_path, {"island": lambda f: f["island"],
                                          "male": lambda f: (f["sex"] == "male").astype(int)}, "roc_auc", 0.5,
                               drop=("sex",))
    with pytest.raises(TaskError) as caught:
        load_task(folder / "task.yaml", metrics=registry.metrics)
    assert "'island' has 3 classes" in str(caught.value) and "\n" not in str(caught.value)


def test_ensembles_average_each_targets_predictions_and_score_as_the_framework_does(multi_label, registry, tmp_path):
    import shutil

    from core.policy import CandidateInfo
    from plugins.heuristic.ensemble import ensemble_plans, ensemble_script

    folder, _ = multi_label
    _, data, metric = prepared(folder, registry)
    ctx = data.context
    folder_in = tmp_path / "ensemble-input"
    folder_in.mkdir()
    for name in ("train.csv", "valid.csv", "test.csv", "sample_submission.csv"):
        shutil.copyfile(data.search_dir / name, folder_in / name)
    candidates = []
    for card in ("linear", "lightgbm"):
        score, _, search = draft_and_run(folder, registry, tmp_path, card)
        (folder_in / "candidates" / card).mkdir(parents=True)
        for name in ("val_predictions.csv", "submission.csv"):
            shutil.copyfile(search.workdir / name, folder_in / "candidates" / card / name)
        candidates.append(CandidateInfo(name=card, score=score))
    plans = ensemble_plans(ctx, candidates)
    assert [p for p in plans if "stacking" in p] == []
    executor = LocalExecutor(ExecutorOptions(workers=2, cache=False), out_dir=tmp_path / "ensembles")
    for plan in plans:
        run = executor.run(RunRequest(code=ensemble_script(ctx, candidates, plan), input_dir=folder_in, timeout=60,
                                      id_column="id"))
        assert run.status == Status.OK, (plan, run.stderr_tail[-2000:])
        score, problem = score_predictions(run.val_predictions, data.truth, ctx, metric)
        assert problem == "" and run.reported_score == pytest.approx(score, abs=0.02), plan
        assert score > min(c.score for c in candidates) - 0.01, plan


def test_several_targets_with_a_text_column_train_on_the_sparse_tfidf_features(registry, tmp_path):
    # the bench's docstring-sections: four 0/1 columns from a docstring's summary line, its module, kind and arity
    folder = Path(__file__).resolve().parents[1] / "bench" / "tasks" / "docstring-sections"
    task = load_task(folder / "task.yaml", metrics=registry.metrics, output=tmp_path / "out")
    metric = registry.metrics[task.metric]
    data = prepare_data(task, maximize=metric.maximize, proba=metric.proba)
    ctx = data.context
    assert len(ctx.targets) == 4 and ctx.modality == "mixed"
    cards = {c.name: c for c in CatalogueBackend().search(ctx.card_query(), 50)}
    code = make_heuristic_policy({}).write_initial(ctx, cards["linear"])
    assert "TfidfVectorizer" in code and "MultiOutputClassifier" in code
    run = LocalExecutor(ExecutorOptions(workers=2, cache=False), out_dir=tmp_path / "runs").run(
        RunRequest(code=code, input_dir=data.search_dir, timeout=180, id_column="id"))
    assert run.status == Status.OK, run.stderr_tail[-2000:]
    score, problem = score_predictions(run.val_predictions, data.truth, ctx, metric)
    assert problem == "" and score > 0.62  # mean column-wise AUC; the four summaries' labels are hard to read
