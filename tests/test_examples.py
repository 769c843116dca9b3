"""The bundled example tasks: each task.yaml names files that exist, the data are consistent, and the build is
reproducible byte for byte."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FOLDERS = sorted(path.parent for path in EXAMPLES.glob("*/task.yaml"))
METRICS = {"accuracy", "balanced_accuracy", "roc_auc", "logloss", "f1", "rmse", "rmsle", "mae", "r2"}
BUDGET_KEYS = {"total_seconds", "run_timeout", "models", "plans", "outer_steps", "ensemble_rounds", "debug_retries"}


def load_task(folder: Path) -> dict:
    """task.yaml resolved to paths and column names, whichever data form it uses (explicit files or `dir:`)."""
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    data = spec["data"]
    if "dir" in data:
        # MLE-bench layout: fixed file names, and the sample submission says which columns are id and target.
        base = folder / data["dir"]
        sample = pd.read_csv(base / "sample_submission.csv")
        return {"spec": spec, "train": base / "train.csv", "test": base / "test.csv", "goal": base / "description.md",
                "sample": base / "sample_submission.csv", "id": sample.columns[0], "target": sample.columns[1]}
    return {"spec": spec, "train": folder / data["train"], "test": folder / data["test"],
            "goal": folder / spec["goal_file"], "sample": None, "id": data["id"], "target": data["target"]}


def test_three_examples_ship_including_one_in_mlebench_layout():
    assert [folder.name for folder in FOLDERS] == ["biopsy-mlebench", "diamonds", "penguins"]
    assert "dir" in yaml.safe_load((EXAMPLES / "biopsy-mlebench" / "task.yaml").read_text())["data"]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda folder: folder.name)
def test_task_yaml_uses_the_schema_and_names_files_that_exist(folder):
    task = load_task(folder)
    spec = task["spec"]
    assert set(spec) == {"name", "goal_file", "data", "metric", "budget", "output", "seed"}
    assert spec["name"] == folder.name
    assert spec["metric"] in METRICS
    assert set(spec["budget"]) == BUDGET_KEYS
    assert not Path(spec["output"]).is_absolute()
    for key in ["train", "test", "goal"] + (["sample"] if task["sample"] else []):
        assert task[key].is_file(), f"{folder.name}: {key} file {task[key]} is missing"
    assert task["goal"].read_text().strip()
    # The grader's answers must stay out of the agent's sight.
    assert "private" not in (folder / "task.yaml").read_text()


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda folder: folder.name)
def test_example_data_are_consistent(folder):
    task = load_task(folder)
    id_column, target = task["id"], task["target"]
    train, test = pd.read_csv(task["train"]), pd.read_csv(task["test"])
    answers = pd.read_csv(folder / "private" / "answers.csv")

    assert target in train.columns and target not in test.columns
    assert list(test.columns) == [column for column in train.columns if column != target]
    assert train[id_column].is_unique and test[id_column].is_unique
    assert set(train[id_column]).isdisjoint(test[id_column])
    assert train[target].notna().all()
    assert list(answers.columns) == [id_column, target]
    assert answers[id_column].tolist() == test[id_column].tolist()
    assert answers[target].notna().all()
    if task["sample"]:
        sample = pd.read_csv(task["sample"])
        assert list(sample.columns) == [id_column, target]
        assert sample[id_column].tolist() == test[id_column].tolist()


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda folder: folder.name)
def test_metric_fits_the_target(folder):
    task = load_task(folder)
    answers = pd.read_csv(folder / "private" / "answers.csv")[task["target"]]
    if task["spec"]["metric"] in {"rmse", "rmsle", "mae", "r2"}:
        assert answers.nunique() > 20 and pd.api.types.is_numeric_dtype(answers)
    else:
        assert answers.nunique() <= 20
    if task["spec"]["metric"] in {"roc_auc", "logloss"}:
        assert set(answers) == {0, 1}, "probability metrics here score a binary 0/1 target"


def test_build_script_reproduces_the_committed_data_byte_for_byte(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "build_examples.py"), "--out", str(tmp_path)],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]

    built = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file())
    committed = sorted(path.relative_to(EXAMPLES) for path in EXAMPLES.rglob("*.csv"))
    assert built == committed, "the committed CSVs are not exactly what the build script writes"
    for relative in built:
        assert (tmp_path / relative).read_bytes() == (EXAMPLES / relative).read_bytes(), f"{relative} differs"
