"""The target of an MLE-bench folder in the wide probability format (sample: id plus one column per class, as in
spooky-author-identification): inferred from train.csv, scored in the sample's column order, and run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_iris, load_wine

from core.dataprep import prepare_data
from core.scoring import score_predictions
from core.submission import submission_problems
from core.task import load_task

ROOT = Path(__file__).resolve().parents[1]
WINE_CLASSES = ["class_a", "class_b", "class_c"]
MINIMAL_TASK = "data: {dir: .}\nmetric: logloss\n"


def wine() -> tuple[pd.DataFrame, str]:
    data = load_wine(as_frame=True)
    frame = data.frame.drop(columns="target").rename(columns=lambda c: c.replace("/", "_"))
    frame["cultivar"] = np.array(WINE_CLASSES)[data.target]
    return frame, "cultivar"


def iris_coded() -> tuple[pd.DataFrame, str]:
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return frame.rename(columns={"target": "species_code"}), "species_code"


def spooky_folder(root: Path, frame: pd.DataFrame, target: str, columns: list[str] | None = None) -> Path:
    """spooky-author-identification's layout: train.csv (id, features, label), test.csv (id, features),
    sample_submission.csv (id, one uniform probability column per class, in the order given), description.md and a
    task.yaml naming only the folder and the metric."""
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.insert(0, "id", [f"id{i:05d}" for i in range(len(frame))])
    test, train = frame.iloc[:40], frame.iloc[40:]
    columns = columns if columns is not None else sorted(str(v) for v in frame[target].unique())
    root.mkdir(parents=True)
    train.to_csv(root / "train.csv", index=False)
    test.drop(columns=target).to_csv(root / "test.csv", index=False)
    test[["id"]].assign(**{c: 1 / len(columns) for c in columns}).to_csv(root / "sample_submission.csv", index=False)
    (root / "description.md").write_text(f"# {root.name}\n\nPredict the probability of each {target} per row.\n")
    (root / "task.yaml").write_text(MINIMAL_TASK)
    return root / "task.yaml"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.run", *args], check=False, capture_output=True, text=True,
                          cwd=ROOT, timeout=900)


# --- inferred ----------------------------------------------------------------------------------------------------

def test_string_labels_naming_the_probability_columns_make_their_column_the_target(tmp_path, registry):
    task_file = spooky_folder(tmp_path / "wine-cultivars", *wine())

    task = load_task(task_file, metrics=registry.metrics)

    assert (task.target, task.id_column, task.prediction_columns) == ("cultivar", "id", tuple(WINE_CLASSES))
    assert (task.name, task.task_type, task.metric) == ("wine-cultivars", "classification", "logloss")


def test_integer_labels_match_columns_named_0_1_2_even_with_missing_targets(tmp_path, registry):
    frame, target = iris_coded()
    frame[target] = frame[target].astype(float)
    frame.loc[[3, 70, 140], target] = np.nan  # train.csv then holds 0.0, 1.0, 2.0 and gaps
    task_file = spooky_folder(tmp_path / "iris-coded", frame, target, columns=["0", "1", "2"])

    task = load_task(task_file, metrics=registry.metrics)
    assert (task.target, task.prediction_columns) == ("species_code", ("0", "1", "2"))

    # the classes keep the columns' names, so validation labels find their probability column
    data = prepare_data(task, maximize=False, proba=True)
    assert data.context.classes == ["0", "1", "2"] and data.context.output_kind() == "wide"
    score = score_wide(data, registry, ["0", "1", "2"])
    assert score == pytest.approx(-np.log(0.98), abs=1e-3)


def test_the_metric_reads_the_probability_columns_in_the_samples_order(tmp_path, registry):
    order = ["class_c", "class_a", "class_b"]
    task = load_task(spooky_folder(tmp_path / "wine", *wine(), columns=order), metrics=registry.metrics)
    assert task.prediction_columns == tuple(order)

    data = prepare_data(task, maximize=False, proba=True)
    assert score_wide(data, registry, order) == pytest.approx(-np.log(0.98), abs=1e-3)


def score_wide(data, registry, columns: list[str]) -> float:
    """logloss of predictions giving 0.98 to each validation row's true class, written in ``columns`` order."""
    truth = pd.read_csv(data.truth)
    labels = truth[data.context.target].astype(str)
    pred = truth[["id"]].assign(**{c: (labels == c).astype(float) * 0.97 + 0.01 for c in columns})
    path = data.truth.parent / "val_predictions.csv"
    pred.to_csv(path, index=False)
    score, problem = score_predictions(path, data.truth, data.context, registry.metrics["logloss"])
    assert problem == ""
    return score


# --- not inferred: one line, exit 2 ------------------------------------------------------------------------------

def test_two_columns_with_the_class_labels_are_named_and_nothing_is_guessed(tmp_path):
    frame, target = wine()
    frame["cultivar_copy"] = frame[target]
    task_file = spooky_folder(tmp_path / "wine", frame, target)

    done = run_cli("validate", str(task_file))

    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {task_file}: data.target: columns cultivar, cultivar_copy of train.csv ")
    assert "set data.target in task.yaml" in line


def test_a_partial_overlap_of_labels_and_columns_matches_no_column(tmp_path):
    task_file = spooky_folder(tmp_path / "wine", *wine(), columns=["class_a", "class_b"])

    done = run_cli("validate", str(task_file))

    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {task_file}: data.target: no column of train.csv has exactly the sample "
                           f"submission's 2 prediction columns (class_a, class_b) as its values")
    assert "set data.target in task.yaml" in line


# --- end to end --------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_run_on_a_wide_folder_writes_probability_rows_in_the_samples_columns(tmp_path):
    task_file = spooky_folder(tmp_path / "wine", *wine(), columns=["class_b", "class_c", "class_a"])
    spec = yaml.safe_load(task_file.read_text())
    spec.update(output=str(tmp_path / "out"), executor={"name": "local", "options": {"workers": 2}},
                budget={"models": 2, "plans": 1, "outer_steps": 1, "ensemble_rounds": 1, "total_seconds": 300},
                strategy={"anytime": False})
    task_file.write_text(yaml.safe_dump(spec))

    done = run_cli(str(task_file))

    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    result = json.loads((out / "result.json").read_text())
    assert result["final"]["status"] == "ok" and result["direction"] == "minimize"
    sample = tmp_path / "wine" / "sample_submission.csv"
    assert not submission_problems(out / "submission.csv", sample, "id")
    sub = pd.read_csv(out / "submission.csv")
    assert list(sub.columns) == ["id", "class_b", "class_c", "class_a"]
    assert np.allclose(sub[["class_b", "class_c", "class_a"]].sum(axis=1), 1.0, atol=1e-6)
    assert sub[["class_b", "class_c", "class_a"]].to_numpy().min() >= 0
