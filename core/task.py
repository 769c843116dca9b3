"""task.yaml: its schema (pydantic), loading, and resolution into a ``Task`` with absolute paths and known columns.

Every user mistake ends in ``TaskError`` with one line: the file, the key, what is wrong and what to do.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.assets import archive_stem, readable_archive
from core.errors import TaskError

PRIVATE_MARKERS = ("answer", "private", "solution")  # files never shown to a script, as in MLE-bench layouts


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    dir: Path | None = Field(None, description="MLE-bench-style competition folder")
    train: Path | None = None
    test: Path | None = None
    sample_submission: Path | None = None
    target: str | list[str] | None = Field(None, description="the column of train.csv to predict, or several (one "
                                                             "prediction column each: multi-target, multi-label)")
    id: str | None = None
    extra_files: list[Path] = Field(default_factory=list, description="other provided files, folders or archives "
                                                                      "the scripts may use")
    modality: Literal["tabular", "text", "image", "mixed"] | None = Field(
        None, description="what the rows' features are; inferred from the files and columns when left out")


class Budget(_Strict):
    total_seconds: float = Field(3600, gt=0, allow_inf_nan=False, description="wall clock for the whole run")
    run_timeout: float = Field(600, gt=0, allow_inf_nan=False, description="seconds one script may run")
    models: int = Field(4, ge=1, description="M: model cards retrieved and drafted")
    plans: int = Field(4, ge=1, description="K: inner-loop refinement plans per outer step")
    outer_steps: int = Field(4, ge=0, description="T: ablation/refinement rounds")
    ensemble_rounds: int = Field(5, ge=0, description="R: ensembling plans tried")
    debug_retries: int = Field(2, ge=0, description="debug attempts for a failing script")
    search_rows: int = Field(30000, ge=10, description="training rows scripts see during search (full data at the end)")


class PluginChoice(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class ValidationSplit(_Strict):
    fraction: float = Field(0.2, gt=0, lt=1, description="share of training rows held out for validation")
    selection: float = Field(0.5, ge=0, lt=1, description="share of the validation rows the search never scores on: "
                                                          "they choose the final solution (0: the search's rows do)")
    folds: int | Literal["auto"] = Field(
        "auto", description="score every search attempt by K-fold cross-validation over the search's training rows "
                            "(one run per fold; every held-out validation row then chooses the final solution); 1: "
                            "score on the held-out validation rows; auto: 3 folds up to 5,000 search rows, else 1")

    @field_validator("folds")
    @classmethod
    def _folds(cls, value):
        if value != "auto" and value < 1:
            raise ValueError("folds must be 'auto' or a whole number ≥ 1 (1: no cross-validation)")
        return value


class Strategy(_Strict):
    merge_stop_at_first: bool = Field(True, description="stop merging at the first merge that does not improve")
    ensemble_size: int = Field(4, ge=2, description="most solutions one ensemble combines")
    anytime: bool = Field(True, description="after MLE-STAR's first pass, keep working on what promises most until "
                                            "the budget is spent (false: stop after the first pass)")


class PluginsSpec(_Strict):
    disable: list[str] = Field(default_factory=list)


class NodePlacement(_Strict):
    node: str
    after: str | None = None
    replaces: str | None = None


class GraphSpec(_Strict):
    nodes: list[NodePlacement] = Field(default_factory=list, description="registered nodes to insert or swap in")


class TaskFile(_Strict):
    """The raw schema of task.yaml."""

    name: str | None = Field(None, description="defaults to the name of data.dir, else of the task.yaml's folder")
    goal: str | None = None
    goal_file: Path | None = None
    data: DataSpec
    metric: str
    budget: Budget = Field(default_factory=Budget)
    policy: PluginChoice = Field(default_factory=lambda: PluginChoice(name="heuristic"))
    retrieval: PluginChoice = Field(default_factory=lambda: PluginChoice(name="catalogue"))
    executor: PluginChoice = Field(default_factory=lambda: PluginChoice(name="local"))
    validation: ValidationSplit = Field(default_factory=ValidationSplit)
    strategy: Strategy = Field(default_factory=Strategy)
    output: Path | None = None
    seed: int = Field(0, ge=0, lt=2**31, description="random state of the splits and models (numpy and LightGBM "
                                                    "take 0 to 2**31 - 1)")
    plugins: PluginsSpec = Field(default_factory=PluginsSpec)
    graph: GraphSpec = Field(default_factory=GraphSpec)

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip() or any(c in value for c in "/\\"):
            raise ValueError("must be a non-empty name without slashes")
        return value.strip()


class Task(BaseModel):
    """A validated, resolved task: absolute paths, the goal text, and the columns scripts must predict."""

    model_config = ConfigDict(frozen=True)

    name: str
    source: Path  # the task.yaml it came from
    goal: str
    train: Path
    test: Path | None  # None: the test rows are the sample submission's ids (MLE-bench image competitions)
    sample_submission: Path | None
    extra_files: tuple[Path, ...]
    assets: tuple[Path, ...] = ()  # provided folders and archives (see core.assets)
    modality: str | None = None  # as declared in data.modality; None: inferred when the data are prepared
    target: str  # the first of ``targets``: all of it when there is one
    targets: tuple[str, ...]  # every column to predict, in the sample's order (several: one prediction column each)
    id_column: str | None
    prediction_columns: tuple[str, ...]  # the sample's non-id columns (one per class in a wide probability format)
    metric: str
    task_type: Literal["classification", "regression"]
    budget: Budget
    policy: PluginChoice
    retrieval: PluginChoice
    executor: PluginChoice
    validation: ValidationSplit
    strategy: Strategy
    output: Path
    seed: int
    plugins: PluginsSpec
    graph: GraphSpec

    @property
    def public_files(self) -> dict[str, Path]:
        """Every provided file a script may read, by the name it has in the working folder's input/."""
        files = {"train.csv": self.train}
        if self.test is not None:
            files["test.csv"] = self.test
        if self.sample_submission is not None:
            files["sample_submission.csv"] = self.sample_submission
        for path in (*self.extra_files, *self.assets):
            files.setdefault(path.name, path)
        return files


def read_yaml_mapping(path: str | Path, error: type[Exception], what: str) -> dict:
    """The top-level mapping of a YAML file, or ``error`` with one line (``what``: e.g. "a task.yaml")."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise error(f"{where}: no such file; pass the path of {what}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{where}: not valid YAML{at} ({getattr(exc, 'problem', exc)}); fix the syntax") from None
    except UnicodeDecodeError:
        raise error(f"{where}: not a text file; pass {what}") from None
    if raw is None:
        raise error(f"{where}: the file is empty; see {what} in the README for the keys it needs")
    if not isinstance(raw, dict):
        raise error(f"{where}: the top level must be a mapping of keys, not a {type(raw).__name__}")
    return raw


def read_model(path: str | Path, model: type[BaseModel], error: type[Exception], what: str):
    """A YAML file checked against ``model``; ``error`` with one line (``one_line``) when it does not fit."""
    raw = read_yaml_mapping(path, error, what)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(one_line(str(path), exc, model)) from None


def load_task_file(path: str | Path) -> tuple[TaskFile, Path]:
    """Parse and schema-check task.yaml; returns the raw model and the folder relative paths resolve against."""
    return read_model(path, TaskFile, TaskError, "a task.yaml (see examples/)"), Path(path).resolve().parent


def one_line(where: str, exc: ValidationError, root: type[BaseModel]) -> str:
    """The first schema error of a file as one line: which key, what is wrong, what to do."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    key = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        known = _fields_at(root, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.5)
        hint = f"did you mean '{'.'.join(loc[:-1] + [close[0]])}'?" if close else f"valid keys: {', '.join(known)}"
        return f"{where}: {key}: unknown key; {hint}"
    if err["type"] == "missing":
        return f"{where}: {key}: required key is missing; add it"
    got = err.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    msg = err["msg"][:1].lower() + err["msg"][1:]  # "input should be ..."; class names keep their capitals
    return f"{where}: {key}: {msg} (got {shown}); fix that value"


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    for part in loc:
        if part.isdigit():  # an index into a list of models
            continue
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        args = getattr(ann, "__args__", (ann,))
        inner = [a for a in _flatten(args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            return []
        model = inner[0]
    return list(model.model_fields)


def _flatten(args) -> list:
    out = []
    for a in args:
        out += _flatten(getattr(a, "__args__", ())) if getattr(a, "__args__", None) else [a]
    return out


def resolve_task(tf: TaskFile, base: Path, *, metrics: dict, source: Path, output: Path | None = None) -> Task:
    """Turn a schema-checked TaskFile into a Task: find files, read the goal, infer columns, check the metric."""
    where = str(source)

    def path_of(value: Path, key: str, must_exist: bool = True) -> Path:
        try:  # a NUL byte or an over-long name is refused by the OS, not merely absent
            p = (value if value.is_absolute() else (base / value)).resolve()
            exists = p.exists()
        except (OSError, ValueError) as exc:
            shown = repr(str(value)) if len(str(value)) <= 80 else repr(str(value)[:77] + "...")
            raise TaskError(f"{where}: {key}: {shown} is not a usable path ({exc}); fix the path") from None
        if must_exist and not exists:
            raise TaskError(f"{where}: {key}: file not found: {p}; fix the path (relative paths resolve against "
                            f"the folder of task.yaml)")
        return p

    def file_of(value: Path, key: str) -> Path:
        p = path_of(value, key)
        if not p.is_file():
            what = "a folder" if p.is_dir() else "not a regular file"
            raise TaskError(f"{where}: {key}: {p} is {what}; point {key} at a file")
        return p

    def asset_or_file(value: Path) -> Path:
        p = path_of(value if folder is None or value.is_absolute() else folder / value, "data.extra_files")
        if not (p.is_file() or p.is_dir()):
            raise TaskError(f"{where}: data.extra_files: {p} is not a regular file or folder; point it at one")
        return p

    data = tf.data
    folder = path_of(data.dir, "data.dir") if data.dir else None
    if folder is not None and not folder.is_dir():
        raise TaskError(f"{where}: data.dir: {folder} is not a folder; point it at the competition folder")

    def data_file(key: str, default_names: tuple[str, ...], required: bool) -> Path | None:
        value = getattr(data, key)
        if value is not None:
            return file_of(value if folder is None or value.is_absolute() else folder / value, f"data.{key}")
        for name in default_names if folder is not None else ():
            if (folder / name).is_file():
                return folder / name
        if required:
            hint = f"add data.{key}" + (f" or put {default_names[0]} in data.dir" if default_names else "")
            raise TaskError(f"{where}: data.{key}: required key is missing; {hint}")
        return None

    train = data_file("train", TRAIN_NAMES, True)
    sample = data_file("sample_submission", ("sample_submission.csv",), False)
    # MLE-bench's image competitions have no test.csv: the sample submission's ids are the rows to predict
    test = data_file("test", ("test.csv",), sample is None)
    out = output or (path_of(tf.output, "output", must_exist=False) if tf.output else
                     base / "out" / (tf.name or (folder or base).name))
    provided = [asset_or_file(p) for p in data.extra_files]
    if folder is not None:
        named = {train, test, sample, *provided}
        for p in sorted(folder.iterdir()):
            low = p.name.lower()
            if p in named or p.name.startswith(".") or p.name == "__pycache__" or \
                    any(m in low for m in PRIVATE_MARKERS) or Path(out).resolve().is_relative_to(p.resolve()):
                continue  # hidden, private, or the run's own output folder
            if p.is_dir() or (p.is_file() and p.name != "description.md" and p.suffix not in {".yaml", ".yml"}):
                provided.append(p.resolve())
    assets = [p for p in provided if p.is_dir() or archive_stem(p.name)]
    extra = [p for p in provided if p not in assets]
    for archive in (p for p in assets if p.is_file()):
        if not readable_archive(archive):
            raise TaskError(f"{where}: data.dir: {archive} is not a readable archive; replace it, or unpack it "
                            f"into a folder beside it")

    goal = _goal(tf, base, folder, where, file_of)
    if tf.metric not in metrics:
        close = difflib.get_close_matches(tf.metric, list(metrics), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise TaskError(f"{where}: metric: unknown metric '{tf.metric}'; {hint}choose one of {', '.join(sorted(metrics))}")
    metric = metrics[tf.metric]

    train_cols = _columns(train, where, "data.train")
    test_cols = _columns(test, where, "data.test") if test is not None else \
        _columns(sample, where, "data.sample_submission")[:1]  # only the id column names the rows to predict
    targets, id_column, pred_cols = _infer_columns(data, sample, train, train_cols, test_cols, where)
    if test is not None:
        _check_test_columns(test, train, train_cols, test_cols, {*targets, *pred_cols}, where)
    labels = {t: _scan_csv(train, where, "data.train", t, classes=metric.task_type == "classification")
              for t in targets}
    rows = _scan_csv(test, where, "data.test").rows if test is not None else None
    if rows == 0:
        raise TaskError(f"{where}: data.test: {test} has a header but no rows; give it the rows to predict")
    if sample is not None and _scan_csv(sample, where, "data.sample_submission").rows == 0 and test is None:
        raise TaskError(f"{where}: data.sample_submission: {sample} has a header but no rows, and there is no "
                        f"test.csv; list the rows to predict in one of them")
    for target, seen in labels.items():
        _check_labels(seen, metric.task_type, tf.validation.fraction, train, target, tf.metric, where)
        if len(targets) > 1 and metric.proba and len(seen.counts) > 2:
            raise TaskError(f"{where}: data.target: '{target}' has {len(seen.counts)} classes, but with several "
                            f"targets metric {tf.metric} reads one probability per column (two classes each); "
                            f"choose a label metric such as accuracy")

    name = tf.name or (folder or base).name  # an MLE-bench folder is named after its competition
    return Task(
        name=name, source=source.resolve(), goal=goal, train=train, test=test, sample_submission=sample,
        extra_files=tuple(extra), assets=tuple(assets), modality=data.modality, target=targets[0], targets=tuple(targets),
        id_column=id_column, prediction_columns=tuple(pred_cols),
        metric=tf.metric, task_type=metric.task_type, budget=tf.budget, policy=tf.policy,
        retrieval=tf.retrieval, executor=tf.executor, validation=tf.validation, strategy=tf.strategy, output=Path(out).resolve(),
        seed=tf.seed, plugins=tf.plugins, graph=tf.graph,
    )


def _goal(tf: TaskFile, base: Path, folder: Path | None, where: str, file_of) -> str:
    if tf.goal and tf.goal.strip():
        return tf.goal.strip()
    if tf.goal_file is not None:
        text = _text(file_of(tf.goal_file, "goal_file"), where, "goal_file")
        if not text:
            raise TaskError(f"{where}: goal_file: {tf.goal_file} is empty; describe the task in it")
        return text
    if folder is not None and (folder / "description.md").is_file():
        return _text(folder / "description.md", where, "data.dir")
    raise TaskError(f"{where}: goal: required key is missing; add goal (text) or goal_file (a description file)")


def _text(path: Path, where: str, key: str) -> str:
    try:
        return path.read_text().strip()
    except UnicodeDecodeError:
        raise TaskError(f"{where}: {key}: {path} is not UTF-8 text; save it as UTF-8") from None


def _columns(path: Path, where: str, key: str) -> list[str]:
    try:
        return [str(c) for c in pd.read_csv(path, nrows=5).columns]
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise _unreadable(where, key, path, exc) from None


def _unreadable(where: str, key: str, path: Path, exc: Exception) -> TaskError:
    detail = " ".join(str(exc).split())  # pandas' messages may span lines; the error stays one line
    todo = "save it as UTF-8" if isinstance(exc, UnicodeDecodeError) else "fix the file"
    return TaskError(f"{where}: {key}: {path} is not a readable CSV ({type(exc).__name__}: {detail}); {todo}")


def _check_test_columns(test: Path, train: Path, train_cols: list[str], test_cols: list[str], predicted: set[str],
                        where: str) -> None:
    """Every input column of train.csv is in test.csv: a model fitted on a column cannot predict without it."""
    missing = [c for c in train_cols if c not in predicted and c not in test_cols]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise TaskError(f"{where}: data.test: {test} lacks {len(missing)} column(s) of {train.name} ({shown}); "
                        f"add them to {test.name} or drop them from {train.name}")


@dataclass
class _Labels:
    """What one pass over a CSV saw: its data rows and, for one column, its labelled (non-missing) values."""

    rows: int = 0
    labelled: int = 0
    counts: Counter = field(default_factory=Counter)  # class (as the sample names it) -> rows; classification only
    not_numbers: int = 0
    example: str = ""  # one labelled value that is not a number


def _scan_csv(path: Path, where: str, key: str, column: str | None = None, classes: bool = False) -> _Labels:
    """Parse the whole file in chunks (a malformed row anywhere is the user's to fix before a run starts, and a large
    file is never held whole), counting rows and the labelled values of ``column`` (per class with ``classes``)."""
    seen = _Labels()
    try:
        for chunk in pd.read_csv(path, dtype=str, chunksize=LABEL_CHUNK_ROWS):
            seen.rows += len(chunk)
            if column is None or column not in chunk:
                continue
            values = chunk[column].dropna()
            seen.labelled += len(values)
            if classes:
                for value, n in values.value_counts().items():
                    seen.counts[_label_text(value)] += int(n)
            numbers = pd.to_numeric(values, errors="coerce")
            seen.not_numbers += int(numbers.isna().sum())
            if not seen.example and numbers.isna().any():
                seen.example = str(values[numbers.isna()].iloc[0])
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise _unreadable(where, key, path, exc) from None
    return seen


MIN_LABELLED_ROWS = 10  # fewer cannot be split into training rows, validation rows and 3 cross-validation folds
MIN_CLASS_ROWS = 2  # a class seen once is in the training rows or the validation rows, never in both


def _check_labels(labels: _Labels, task_type: str, fraction: float, train: Path, target: str, metric: str,
                  where: str) -> None:
    """Enough labelled rows (and, for classification, classes) for the fixed validation split to be made."""
    labelled = labels.labelled
    if labelled < MIN_LABELLED_ROWS:
        raise TaskError(f"{where}: data.train: {train} has {labelled} labelled row{'' if labelled == 1 else 's'} "
                        f"(a value in '{target}'); "
                        f"at least {MIN_LABELLED_ROWS} are needed to hold out validation rows; add rows")
    if task_type == "regression":
        if labels.not_numbers:
            raise TaskError(f"{where}: data.target: '{target}' in {train} has {labels.not_numbers} value(s) that are "
                            f"not numbers (e.g. {labels.example!r}), but metric {metric} is for regression; choose a "
                            f"classification metric or fix the column")
        return
    if len(labels.counts) < 2:
        only = next(iter(labels.counts))
        raise TaskError(f"{where}: data.target: every labelled row of {train} has the same '{target}' ({only!r}); "
                        f"metric {metric} needs at least 2 classes; add rows of another class or choose a "
                        f"regression metric")
    common = [c for c, n in labels.counts.items() if n >= MIN_CLASS_ROWS]
    if len(common) < 2:
        shown = ", ".join(f"{c!r}: {n}" for c, n in labels.counts.most_common(5))
        raise TaskError(f"{where}: data.target: '{target}' in {train} has fewer than 2 classes with at least "
                        f"{MIN_CLASS_ROWS} rows each ({shown}); add rows of a second class")
    classes = len(labels.counts)
    if min(labels.counts.values()) >= MIN_CLASS_ROWS and not _splits(labelled, classes, fraction):
        # every class has 2 rows, so the validation split is stratified: each side must hold every class
        need = _rows_for_stratified_split(classes, fraction)
        raise TaskError(f"{where}: data.train: {train} has {labelled} labelled rows; with {classes} classes of "
                        f"'{target}' and validation.fraction {fraction} it needs at least {need} (a validation "
                        f"row of every class); add rows or raise validation.fraction")


def _splits(rows: int, classes: int, fraction: float) -> bool:
    """Whether scikit-learn's stratified split (ceil(fraction * rows) held out) leaves every class both sides."""
    held = math.ceil(fraction * rows)
    return held >= classes and rows - held >= classes


def _rows_for_stratified_split(classes: int, fraction: float) -> int:
    """The fewest rows ``_splits`` accepts: both sides only grow with the rows, so count up from a lower bound."""
    rows = max(2 * classes, int((classes - 1) / fraction) + 1, int(classes / (1 - fraction)))
    while not _splits(rows, classes, fraction):
        rows += 1
    return rows


def _infer_columns(data: DataSpec, sample: Path | None, train: Path, train_cols: list[str], test_cols: list[str],
                   where: str) -> tuple[list[str], str | None, list[str]]:
    """(the target columns, the id column or None, the sample's prediction columns)."""
    id_column = data.id
    targets = [data.target] if isinstance(data.target, str) else data.target
    pred_cols: list[str]
    if sample is not None:
        sample_cols = _columns(sample, where, "data.sample_submission")
        if id_column is None and sample_cols and sample_cols[0] in test_cols:
            id_column = sample_cols[0]
        pred_cols = [c for c in sample_cols if c != id_column]
        if not pred_cols:
            raise TaskError(f"{where}: data.sample_submission: {sample} has no column besides the id "
                            f"'{id_column}'; add the column(s) to predict")
        if targets is None:
            targets = _targets_from_sample(pred_cols, train, train_cols, id_column, where)
        elif len(targets) > 1 and sorted(targets) != sorted(pred_cols):
            raise TaskError(f"{where}: data.target: with several targets the sample submission's prediction columns "
                            f"({', '.join(pred_cols[:8])}) must be exactly them; fix data.target or the sample")
        elif len(targets) > 1:
            targets = pred_cols  # the sample's order
    else:
        if not targets:
            raise TaskError(f"{where}: data.target: required key is missing when there is no sample submission; "
                            f"set it to the column of train.csv to predict")
        pred_cols = list(targets)
    if not targets or len(set(targets)) < len(targets):
        raise TaskError(f"{where}: data.target: name each column to predict once; set data.target")
    for target in targets:
        if target not in train_cols:
            close = difflib.get_close_matches(target, train_cols, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise TaskError(f"{where}: data.target: column '{target}' is not in the training data; {hint}"
                            f"columns are: {', '.join(train_cols[:20])}")
    if id_column is not None and id_column in targets:
        raise TaskError(f"{where}: data.id: column '{id_column}' is also the target; set data.id to the column that "
                        f"names each row, or leave it out")
    if id_column is not None and (id_column not in test_cols or id_column not in train_cols):
        missing = "test" if id_column not in test_cols else "training"
        raise TaskError(f"{where}: data.id: column '{id_column}' is not in the {missing} data; "
                        f"fix data.id or leave it out")
    return targets, id_column, pred_cols


def _targets_from_sample(pred_cols: list[str], train: Path, train_cols: list[str], id_column: str | None,
                         where: str) -> list[str]:
    """The columns the sample's prediction columns name: the columns themselves (one, or several targets at once,
    each a column of train.csv), or, in the wide probability format (one column per class, named by its label),
    the one training column whose labels are exactly those names."""
    if len(pred_cols) == 1 or all(c in train_cols for c in pred_cols):
        return list(pred_cols)
    if any(c in train_cols for c in pred_cols):
        inside = [c for c in pred_cols if c in train_cols]
        outside = [c for c in pred_cols if c not in train_cols]
        raise TaskError(f"{where}: data.target: the sample submission's prediction columns {', '.join(inside[:4])} "
                        f"are columns of {train.name} but {', '.join(outside[:4])} are not; set data.target to the "
                        f"column(s) to predict")
    shown = ", ".join(pred_cols[:8]) + (", ..." if len(pred_cols) > 8 else "")
    matches = _columns_labelled(train, [c for c in train_cols if c != id_column], set(pred_cols), where)
    if len(matches) == 1:
        return matches
    if not matches:
        raise TaskError(f"{where}: data.target: no column of {train.name} has exactly the sample submission's "
                        f"{len(pred_cols)} prediction columns ({shown}) as its values; set data.target in task.yaml "
                        f"to the column to predict")
    raise TaskError(f"{where}: data.target: columns {', '.join(matches)} of {train.name} all have the sample "
                    f"submission's prediction columns ({shown}) as their values; set data.target in task.yaml to "
                    f"the one to predict")


LABEL_CHUNK_ROWS = 100_000
TRAIN_NAMES = ("train.csv", "labels.csv", "train_labels.csv")  # what MLE-bench folders call the labelled rows


def _columns_labelled(path: Path, columns: list[str], labels: set[str], where: str) -> list[str]:
    """The columns whose distinct values (as text, missing ones aside) are exactly ``labels``. Read in chunks, a column
    dropped at its first other value: a large train.csv is never held whole, and reading stops when none is left."""
    seen: dict[str, set[str]] = {c: set() for c in columns}
    try:
        for chunk in pd.read_csv(path, dtype=str, chunksize=LABEL_CHUNK_ROWS):
            for col in list(seen):
                values = {_label_text(v) for v in chunk[col].dropna().unique()}
                if values <= labels:
                    seen[col] |= values
                else:
                    del seen[col]
            if not seen:
                break
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise _unreadable(where, "data.train", path, exc) from None
    return [c for c in columns if seen.get(c) == labels]


def _label_text(text: str) -> str:
    """A label as the sample names its column: '1.0' is class '1' (a label column with gaps is written as floats)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def load_task(path: str | Path, *, metrics: dict, output: Path | None = None) -> Task:
    """Load, schema-check and resolve task.yaml in one step."""
    tf, base = load_task_file(path)
    return resolve_task(tf, base, metrics=metrics, source=Path(path), output=output)
