"""task.yaml: which files are accepted and what they resolve to, and the one-line error every kind of mistake gets,
in process and through ``python -m core.run validate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import PluginError, TaskError
from core.loading import load_with_plugins
from core.task import load_task

IRIS_TASK = """\
name: iris
goal: Predict the species of each iris.
data:
  train: competition/train.csv
  test: competition/test.csv
  target: species
  id: id
metric: accuracy
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- good files ------------------------------------------------------------------------------------------------

def test_explicit_train_and_test_files_with_target_and_id_are_accepted(tmp_path, make_competition, registry):
    competition = make_competition()
    task = load_task(write(tmp_path / "task.yaml", IRIS_TASK), metrics=registry.metrics)

    assert task.name == "iris"
    assert task.goal == "Predict the species of each iris."
    assert task.train == competition / "train.csv"
    assert task.test == competition / "test.csv"
    assert task.sample_submission is None
    assert (task.target, task.id_column, task.prediction_columns) == ("species", "id", ("species",))
    assert (task.metric, task.task_type) == ("accuracy", "classification")
    assert task.public_files == {"train.csv": competition / "train.csv", "test.csv": competition / "test.csv"}
    assert task.output == tmp_path / "out" / "iris"


def test_relative_paths_resolve_against_the_yaml_folder_not_the_working_directory(
        tmp_path, make_competition, registry, monkeypatch):
    competition = make_competition()
    task_file = write(tmp_path / "tasks" / "iris" / "task.yaml",
                      IRIS_TASK.replace("competition/", "../../competition/") + "output: results\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    task = load_task(task_file, metrics=registry.metrics)

    assert task.train == competition / "train.csv"
    assert task.output == tmp_path / "tasks" / "iris" / "results"


def test_an_mle_bench_folder_gives_target_id_and_goal_and_keeps_private_files_out(
        tmp_path, make_competition, registry):
    competition = make_competition()
    (competition / "weather.csv").write_text("day,rain\n1,0.5\n")  # another provided file: public
    (competition / "private_test_labels.csv").write_text("id,species\n1000,setosa\n")  # graders only
    task_file = write(tmp_path / "task.yaml", "name: iris-folder\ndata:\n  dir: competition\nmetric: accuracy\n")

    task = load_task(task_file, metrics=registry.metrics)

    assert (task.target, task.id_column, task.prediction_columns) == ("species", "id", ("species",))
    assert task.goal == (competition / "description.md").read_text().strip()
    assert task.sample_submission == competition / "sample_submission.csv"
    assert task.public_files == {
        "train.csv": competition / "train.csv",
        "test.csv": competition / "test.csv",
        "sample_submission.csv": competition / "sample_submission.csv",
        "weather.csv": competition / "weather.csv",
    }
    assert (competition / "answers.csv").is_file()  # present in the folder, yet never offered to a script


def test_the_metric_decides_the_task_type(tmp_path, make_competition, registry):
    make_competition("diabetes", dataset="diabetes")
    task_file = write(tmp_path / "task.yaml", "name: diabetes\ndata:\n  dir: diabetes\nmetric: rmse\n")

    task = load_task(task_file, metrics=registry.metrics)

    assert (task.task_type, task.target, task.id_column) == ("regression", "progression", "id")


# --- bad files: one line naming the file and the key -----------------------------------------------------------

BAD_TASKS = {
    "misspelled data key": (IRIS_TASK.replace("target: species", "traget: species"),
                            "data.traget", "did you mean 'data.target'?"),
    "misspelled top-level key": (IRIS_TASK + "budgett:\n  models: 2\n", "budgett", "did you mean 'budget'?"),
    "missing data file": (IRIS_TASK.replace("competition/train.csv", "competition/trian.csv"),
                          "data.train", "file not found"),
    "unknown metric": (IRIS_TASK.replace("metric: accuracy", "metric: acuracy"),
                       "metric", "unknown metric 'acuracy'; did you mean 'accuracy'?"),
    "wrong type": (IRIS_TASK + "budget:\n  models: many\n", "budget.models", "(got 'many')"),
    "empty file": ("", None, "the file is empty"),
    "unparseable YAML": ("name: iris\ndata: [train.csv\nmetric: accuracy\n", None, "not valid YAML at line"),
    "not a mapping": ("- name: iris\n- metric: accuracy\n", None, "the top level must be a mapping"),
    "target not in the data": (IRIS_TASK.replace("target: species", "target: spieces"),
                               "data.target", "column 'spieces' is not in the training data; did you mean 'species'?"),
}


@pytest.mark.parametrize("case", BAD_TASKS)
def test_each_mistake_raises_a_task_error_of_one_line_naming_file_and_key(case, tmp_path, make_competition, registry):
    text, key, says = BAD_TASKS[case]
    make_competition()
    task_file = write(tmp_path / "task.yaml", text)

    with pytest.raises(TaskError) as raised:
        load_task(task_file, metrics=registry.metrics)

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{task_file}: ")
    if key is not None:
        assert f": {key}: " in message
    assert says in message


def test_a_missing_task_file_is_named(tmp_path, registry):
    with pytest.raises(TaskError, match=r"nowhere\.yaml: no such file"):
        load_task(tmp_path / "nowhere.yaml", metrics=registry.metrics)


UNKNOWN_PLUGINS = {
    "policy": ("policy: heuristc", "policy.name", "unknown policy 'heuristc'; did you mean 'heuristic'?"),
    "search backend": ("retrieval: catalog", "retrieval.name",
                       "unknown search backend 'catalog'; did you mean 'catalogue'?"),
    "executor": ("executor:\n  name: lokal\n  options: {workers: 2}", "executor.name",
                 "unknown executor 'lokal'; did you mean 'local'?"),
}


@pytest.mark.parametrize("kind", UNKNOWN_PLUGINS)
def test_an_unknown_plugin_name_is_a_plugin_error_with_a_suggestion(kind, tmp_path, make_competition):
    choice, key, says = UNKNOWN_PLUGINS[kind]
    make_competition()
    task_file = write(tmp_path / "task.yaml", IRIS_TASK + choice + "\n")

    with pytest.raises(PluginError) as raised:
        load_with_plugins(task_file)

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{task_file}: {key}: ")
    assert says in message


# --- the same mistakes through the command line ----------------------------------------------------------------

@pytest.mark.parametrize("case", BAD_TASKS)
def test_validate_reports_a_bad_task_in_one_error_line_and_exits_2(case, tmp_path, make_competition, cli):
    text, key, says = BAD_TASKS[case]
    make_competition()
    task_file = write(tmp_path / "task.yaml", text)

    done = cli("validate", str(task_file))

    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {task_file}: ")
    if key is not None:
        assert f": {key}: " in line
    assert says in line


def test_validate_reports_an_unknown_plugin_name_in_one_error_line(tmp_path, make_competition, cli):
    make_competition()
    task_file = write(tmp_path / "task.yaml", IRIS_TASK + "retrieval: catalog\n")

    done = cli("validate", str(task_file))

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {task_file}: retrieval.name: unknown search backend 'catalog'")
