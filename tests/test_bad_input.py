"""Bad input as a new user hits it: each mistake ends at ``python -m core.run validate`` in one line on stderr that
names the file and the key and says what to do, with exit code 2 and no traceback; a fuzzer over task.yaml values and
CSV shapes finds no input that ends otherwise."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.run import main

TASK = "name: iris\ndata:\n  dir: competition\nmetric: accuracy\n"


def iris_task(tmp_path: Path, make_competition, extra: str = "") -> tuple[Path, Path]:
    """The iris competition folder (120 training rows, 30 test rows, a sample submission) and a task.yaml naming
    it; ``extra`` is appended to the task.yaml."""
    competition = make_competition()
    task_file = tmp_path / "task.yaml"
    task_file.write_text(TASK + extra)
    return task_file, competition


def validate(task_file: Path, capsys) -> tuple[int, str, str]:
    """``python -m core.run validate task_file`` in this interpreter: (exit code, stdout, stderr)."""
    code = main(["validate", str(task_file)])
    out, err = capsys.readouterr()
    return code, out, err


def the_one_error_line(code: int, err: str, task_file: Path, key: str) -> str:
    assert code == 2
    assert "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith(f"error: {task_file}: {key}: ")
    return line


# --- a good task -------------------------------------------------------------------------------------------------

def test_a_minimal_task_validates_ok(tmp_path, make_competition, capsys):
    task_file, _ = iris_task(tmp_path, make_competition)

    code, out, err = validate(task_file, capsys)

    assert (code, err) == (0, "")
    assert out.startswith(f"{task_file}: ok — task 'iris', classification, metric accuracy, target 'species'")


# --- the table of issue #12: one case each -----------------------------------------------------------------------

def test_a_train_csv_with_one_row_is_refused_saying_how_many_labelled_rows_are_needed(
        tmp_path, make_competition, capsys):
    task_file, competition = iris_task(tmp_path, make_competition)
    pd.read_csv(competition / "train.csv").head(1).to_csv(competition / "train.csv", index=False)

    code, _, err = validate(task_file, capsys)

    line = the_one_error_line(code, err, task_file, "data.train")
    assert f"{competition / 'train.csv'} has 1 labelled row (a value in 'species')" in line
    assert line.endswith("at least 10 are needed to hold out validation rows; add rows")


def test_a_csv_malformed_after_its_header_is_refused_with_pandas_message(tmp_path, make_competition, cli):
    task_file, competition = iris_task(tmp_path, make_competition)
    lines = (competition / "train.csv").read_text().splitlines()
    lines[6] = lines[6].replace(",", ',"', 1)  # an unclosed quote in the sixth data row
    (competition / "train.csv").write_text("\n".join(lines) + "\n")

    done = cli("validate", str(task_file))

    line = the_one_error_line(done.returncode, done.stderr, task_file, "data.train")
    assert f"{competition / 'train.csv'} is not a readable CSV (ParserError: " in line
    assert "EOF inside string starting at row 6" in line
    assert line.endswith("; fix the file")


def test_a_test_csv_without_a_training_column_is_refused_naming_the_column(tmp_path, make_competition, capsys):
    task_file, competition = iris_task(tmp_path, make_competition)
    test = pd.read_csv(competition / "test.csv")
    test.drop(columns=["petal_width"]).to_csv(competition / "test.csv", index=False)

    code, _, err = validate(task_file, capsys)

    line = the_one_error_line(code, err, task_file, "data.test")
    assert f"{competition / 'test.csv'} lacks 1 column(s) of train.csv (petal_width)" in line
    assert line.endswith("add them to test.csv or drop them from train.csv")


def test_a_single_class_target_is_refused_for_a_classification_metric(tmp_path, make_competition, capsys):
    task_file, competition = iris_task(tmp_path, make_competition)
    train = pd.read_csv(competition / "train.csv")
    train[train["species"] == "setosa"].to_csv(competition / "train.csv", index=False)

    code, _, err = validate(task_file, capsys)

    line = the_one_error_line(code, err, task_file, "data.target")
    assert f"every labelled row of {competition / 'train.csv'} has the same 'species' ('setosa')" in line
    assert "metric accuracy needs at least 2 classes" in line


def test_a_typo_in_the_executor_options_is_refused_with_the_close_match(tmp_path, make_competition, capsys):
    task_file, _ = iris_task(tmp_path, make_competition, "executor: {name: local, options: {workerz: 2}}\n")

    code, _, err = validate(task_file, capsys)

    line = the_one_error_line(code, err, task_file, "executor.options")
    assert "unknown executor options ['workerz']" in line
    assert line.endswith("did you mean 'workers'?")


def test_an_executor_option_a_run_could_not_use_is_refused_at_validate(tmp_path, make_competition, capsys):
    task_file, _ = iris_task(tmp_path, make_competition, "executor: {name: local, options: {workers: 0}}\n")

    code, _, err = validate(task_file, capsys)

    line = the_one_error_line(code, err, task_file, "executor.options")
    assert "executor option workers must be a whole number ≥ 1, not 0" in line


def test_a_node_placement_that_leaves_submit_unreachable_is_refused(tmp_path, make_competition, capsys):
    task_file, _ = iris_task(tmp_path, make_competition, "graph: {nodes: [{node: check, after: merge}]}\n")

    code, _, err = validate(task_file, capsys)

    line = the_one_error_line(code, err, task_file.resolve(), "graph.nodes")
    assert "placing 'check' after 'merge' leaves 'submit' unreachable from 'retrieve'" in line


# --- around the table ----------------------------------------------------------------------------------------------

def test_the_graph_command_refuses_the_same_placement(tmp_path, make_competition, capsys):
    task_file, _ = iris_task(tmp_path, make_competition, "graph: {nodes: [{node: check, after: merge}]}\n")

    code = main(["graph", str(task_file)])
    out, err = capsys.readouterr()

    assert code == 2 and out == ""
    assert "graph.nodes: placing 'check' after 'merge'" in the_one_error_line(code, err, task_file.resolve(),
                                                                              "graph.nodes")


def test_a_run_with_that_placement_is_refused_before_it_starts_so_a_fixed_task_runs_without_resume(
        tmp_path, make_competition, capsys):
    task_file, _ = iris_task(tmp_path, make_competition, "graph: {nodes: [{node: check, after: merge}]}\n"
                                                         "output: out\n")

    code = main([str(task_file)])
    _, err = capsys.readouterr()

    assert "placing 'check' after 'merge'" in the_one_error_line(code, err, task_file.resolve(), "graph.nodes")
    assert not (tmp_path / "out" / "run.json").exists()  # no unfinished run left behind to --resume


def test_a_node_placed_behind_submit_loops_forever_and_is_refused(tmp_path, make_competition, capsys):
    task_file, _ = iris_task(tmp_path, make_competition, "graph: {nodes: [{node: submit, after: check}]}\n")

    code, _, err = validate(task_file, capsys)

    line = the_one_error_line(code, err, task_file.resolve(), "graph.nodes")
    assert "placing 'submit' after 'check' makes a loop with no way out to 'submit'" in line


def test_too_few_rows_to_hold_out_a_validation_row_of_every_class_are_refused(tmp_path, make_competition, capsys):
    task_file, competition = iris_task(tmp_path, make_competition)
    train = pd.read_csv(competition / "train.csv")
    train.groupby("species").head(4).iloc[2:].to_csv(competition / "train.csv", index=False)  # 10 rows, 3 classes

    code, _, err = validate(task_file, capsys)

    line = the_one_error_line(code, err, task_file, "data.train")
    assert "has 10 labelled rows; with 3 classes of 'species' and validation.fraction 0.2 it needs at least 11" in line


def test_a_regression_metric_on_a_column_of_words_is_refused(tmp_path, make_competition, capsys):
    task_file, competition = iris_task(tmp_path, make_competition)
    task_file.write_text(TASK.replace("metric: accuracy", "metric: rmse"))

    code, _, err = validate(task_file, capsys)

    line = the_one_error_line(code, err, task_file, "data.target")
    assert f"'species' in {competition / 'train.csv'} has 120 value(s) that are not numbers (e.g. " in line
    assert line.endswith("but metric rmse is for regression; choose a classification metric or fix the column")


# --- the fuzzer: whatever task.yaml and CSVs a user writes, validate says ok or one line -------------------------

NAMES = ["id", "x", "y", "color", "a", "a", "", "two\nlines"]  # duplicate, unnamed and two-line column names
CELLS = st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                  st.sampled_from(["a", "b", "NA", "", "1.0", "2020-01-02", 'say "hi"', "x,y", "two\nlines"]))
RARELY = st.sampled_from([False, False, False, True])  # one time in four


def write_csv(columns: list[str], rows: list[list]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return text.getvalue()


@st.composite
def csv_bytes(draw, columns: tuple[str, ...]) -> bytes:
    """A small CSV as a user might write it: mostly ``columns`` over 0-30 rows (the target 'y' with classes 'a' and
    'b' and some missing; a sample with columns 'a' and 'b' names them as probability columns), else 0-5 columns of
    mixed types with missing values and odd names; sometimes an unclosed quote after the header, an empty file, or
    bytes that are not UTF-8."""
    kind = draw(st.sampled_from(["expected"] * 12 + ["mixed"] * 2 + ["empty", "latin-1", "binary"]))
    if kind == "empty":
        return b""
    if kind == "binary":
        return draw(st.binary(max_size=40))
    if kind == "mixed":
        names = draw(st.lists(st.sampled_from(NAMES), max_size=5))
        rows = draw(st.lists(st.lists(CELLS, min_size=len(names), max_size=len(names)), max_size=30))
    else:
        names = list(columns)
        n = draw(st.one_of(st.integers(0, 30), st.integers(20, 30)))  # enough rows, more often than not
        value = {"id": st.integers(0, 10**6), "x": st.one_of(st.none(), st.floats(-10, 10)),
                 "y": st.sampled_from([None, "a", "b", "b"]), "a": st.floats(0, 1), "b": st.floats(0, 1)}
        rows = [[draw(value[c]) for c in names] for _ in range(n)]
    out = write_csv(names, rows)
    if rows and draw(RARELY):
        lines = out.splitlines()
        at = draw(st.integers(1, len(lines) - 1))
        lines[at] = '"' + lines[at]  # an unclosed quote after the header
        out = "\n".join(lines) + "\n"
    return out.encode("utf-8") + (b"caf\xe9\n" if kind == "latin-1" else b"")


ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-5, 100), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=6), st.lists(st.integers(0, 3), max_size=2))
BUDGET_KEYS = ["total_seconds", "run_timeout", "models", "plans", "outer_steps", "search_rows", "modles"]


MISTAKES = ("train", "target", "id", "sample", "metric", "budget", "validation", "executor", "graph", "goal_file",
            "other key")


@st.composite
def task_dicts(draw) -> dict:
    """task.yaml as a dict: right, or with up to two mistakes: missing files and unusable paths, columns that are not
    there, unknown metric names, wrong types and negative numbers for budget keys, odd executor options and node
    placements, unknown keys."""
    wrong = draw(st.sets(st.sampled_from(MISTAKES), max_size=2))

    def pick(key: str, good, bad):
        return draw(st.sampled_from(bad)) if key in wrong else good

    data = {"train": pick("train", "train.csv", ["nowhere.csv", ".", "bad\x00name.csv"]), "test": "test.csv",
            "target": pick("target", "y", ["x", "id", "missing", 3])}
    if draw(st.booleans()):
        data["id"] = pick("id", "id", ["x", "y", "nope"])
    if draw(st.booleans()):
        data["sample_submission"] = pick("sample", "sample.csv", ["nowhere.csv", "test.csv"])
    if draw(st.booleans()) and not wrong & {"train", "target"}:
        data = {"dir": ".", "sample_submission": "sample.csv"}  # MLE-bench style: the target from the sample
    task = {"goal": "predict y", "data": data,
            "metric": pick("metric", draw(st.sampled_from(["accuracy", "logloss", "roc_auc"])), ["rmse", "acuracy", 5])}
    if "budget" in wrong:
        task["budget"] = draw(st.dictionaries(st.sampled_from(BUDGET_KEYS), ANY_VALUE, min_size=1, max_size=2))
    if "validation" in wrong:
        task["validation"] = {"fraction": draw(st.one_of(st.floats(0.05, 0.6), ANY_VALUE))}
    if "executor" in wrong:
        options = draw(st.dictionaries(st.sampled_from(["workers", "workerz", "isolation", "cache"]), ANY_VALUE,
                                       max_size=2))
        task["executor"] = {"name": draw(st.sampled_from(["local", "lokal"])), "options": options}
    if "graph" in wrong:
        node = draw(st.sampled_from(["check", "merge", "submit", "audit"]))
        where = draw(st.sampled_from([{"after": "merge"}, {"after": "submit"}, {"replaces": "ensemble"}, {}]))
        task["graph"] = {"nodes": [{"node": node, **where}]}
    if "goal_file" in wrong:  # the goal in a folder, a missing file, or a file that may not be text
        del task["goal"]
        task["goal_file"] = draw(st.sampled_from([".", "nowhere.md", "train.csv"]))
    if "other key" in wrong:
        task[draw(st.sampled_from(["output", "seed", "policy", "unknown_key"]))] = draw(ANY_VALUE)
    return task


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(task=task_dicts(), train=csv_bytes(("id", "x", "y")), test=csv_bytes(("id", "x")),
       sample=st.one_of(csv_bytes(("id", "y")), csv_bytes(("id", "a", "b"))))
def test_any_task_and_csvs_validate_ok_or_fail_in_one_line_with_exit_code_2(task, train, test, sample, capsys):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, content in (("train.csv", train), ("test.csv", test), ("sample.csv", sample)):
            (root / name).write_bytes(content)
        (root / "task.yaml").write_text(yaml.safe_dump(task))
        capsys.readouterr()

        code, out, err = validate(root / "task.yaml", capsys)

    assert "Traceback" not in out + err
    assert code in (0, 2), err
    assert len(err.splitlines()) <= 1, err
    if code == 0:
        assert " ok — " in out and err == ""
    else:  # the line names the task file first (graph errors name it resolved)
        assert err.startswith((f"error: {root / 'task.yaml'}: ", f"error: {root.resolve() / 'task.yaml'}: ")), err
