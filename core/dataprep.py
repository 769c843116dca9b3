"""Prepares what scripts see: one fixed validation split written into input folders, a capped subsample for the
search (on small data in K folds: see ``core.folds``) and every labelled row (validation rows included) for the
final run, and the validation truth kept where no script can read it."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from core import assets
from core.folds import FOLDS_DIR, VALIDATION_FOLDS
from core.policy import AssetInfo, ColumnInfo, TaskContext
from core.task import Task

SYNTHETIC_ID = "row_id"


@dataclass(frozen=True)
class PreparedData:
    search_dir: Path  # train.csv capped at budget.search_rows (with folds/<k>/ when the search cross-validates)
    full_dir: Path  # every labelled row (the validation rows too) in train.csv: the final run's data
    truth: Path  # the search's validation ids and targets, outside both input folders
    context: TaskContext
    selection_truth: Path | None = None  # the other validation rows: only the final choice is scored on them


def saved_context(data_root: Path) -> TaskContext | None:
    """The task context a run prepared into ``data_root`` (``<output>/data``), or None when it is gone."""
    manifest = data_root / "manifest.json"
    if not manifest.is_file():
        return None
    return TaskContext.model_validate(json.loads(manifest.read_text())["context"])


def prepare_data(task: Task, maximize: bool, proba: bool) -> PreparedData:
    """Write (or reuse, when the task's data are unchanged) the prepared input folders under ``output/data``."""
    root = task.output / "data"
    manifest = root / "manifest.json"
    stamp = _stamp(task)
    if manifest.is_file():
        saved = json.loads(manifest.read_text())
        if saved.get("stamp") == stamp:
            return PreparedData(root / "search", root / "full", root / "valid_truth.csv",
                                TaskContext.model_validate(saved["context"]), _selection_file(root))
    if root.exists():
        shutil.rmtree(root)
    tmp = task.output / "data.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

    train = pd.read_csv(task.train)
    # without test.csv the sample submission's ids are the rows to predict (core.task checked it names them)
    test = pd.read_csv(task.test) if task.test is not None else \
        pd.read_csv(task.sample_submission, usecols=[task.id_column])
    id_col = task.id_column or SYNTHETIC_ID
    if task.id_column is None:  # every row needs an id so predictions can be matched to rows
        train.insert(0, SYNTHETIC_ID, np.arange(len(train)))
        test.insert(0, SYNTHETIC_ID, np.arange(len(test)))
    targets = list(task.targets)
    train = train[train[targets].notna().all(axis=1)].reset_index(drop=True)
    if task.task_type == "classification":
        for target in targets:
            train[target] = _whole_labels(train[target])
    # several targets: no one column to stratify on, the splits are plain random ones
    stratify = _stratify(train[task.target]) if task.task_type == "classification" and len(targets) == 1 else None
    fit_part, valid = train_test_split(train, test_size=task.validation.fraction, random_state=task.seed,
                                       stratify=stratify)
    search = fit_part
    if len(fit_part) > task.budget.search_rows:
        search, _ = train_test_split(fit_part, train_size=task.budget.search_rows, random_state=task.seed,
                                     stratify=_stratify(fit_part[task.target]) if stratify is not None else None)
    pred_cols = list(task.prediction_columns)
    sample = _sample(task, test, id_col, pred_cols)
    # the final run learns from every labelled row: the validation rows have done their work (choosing) by then,
    # and on small data a fifth more rows is worth more than any refinement; they come last, so dropping them
    # gives back the search's rows in the search's order (see graphs.ensembling.STANDALONE)
    everything = pd.concat([fit_part, valid], ignore_index=True)
    folds = fold_count(task.validation.folds, len(search))

    links, folders, infos = _assets(task, tmp / ASSETS, root / ASSETS)

    def write(folder: Path, train_rows: pd.DataFrame, valid_rows: pd.DataFrame) -> None:
        folder.mkdir(parents=True)
        train_rows.to_csv(folder / "train.csv", index=False)
        valid_rows.to_csv(folder / "valid.csv", index=False)
        test.to_csv(folder / "test.csv", index=False)
        sample.to_csv(folder / "sample_submission.csv", index=False)
        for path in task.extra_files:
            shutil.copyfile(path, folder / path.name)
        for name, target in links.items():  # the executors mount (or copy) what these point at, read-only
            (folder / name).symlink_to(target)

    if folds == 1:
        write(tmp / "full", everything, valid)
        write(tmp / "search", search, valid)
        scored, chosen = _selection_split(valid, task, stratify is not None)
    else:
        # K-fold over the search rows: each fold's model predicts its held-out rows (the search scores those, so
        # every search row counts, not a few dozen) and every validation row (they choose the final solution).
        # The top folders' valid.csv lists every row a merged prediction covers: ensembles read it; the final
        # run's folder keeps the folds (as validation_folds/, which no executor splits a run over) so that
        # final_solution.py can rebuild an ensemble's members' predictions from ./input/ alone.
        covered = pd.concat([search, valid], ignore_index=True)
        write(tmp / "full", everything, covered)
        write(tmp / "search", search, covered)
        splitter = (StratifiedKFold(folds, shuffle=True, random_state=task.seed)
                    if stratify is not None and _stratify(search[task.target]) is not None
                    and search[task.target].value_counts().min() >= folds
                    else KFold(folds, shuffle=True, random_state=task.seed))
        for k, (fit_rows, held) in enumerate(splitter.split(search, search[task.target])):
            write(tmp / "search" / FOLDS_DIR / str(k), search.iloc[fit_rows],
                  pd.concat([search.iloc[held], valid], ignore_index=True))
        shutil.copytree(tmp / "search" / FOLDS_DIR, tmp / "full" / VALIDATION_FOLDS, symlinks=True)
        share = task.validation.selection
        scored, chosen = (search, valid) if share > 0 else (pd.concat([search, valid], ignore_index=True), None)
    scored[[id_col, *targets]].to_csv(tmp / "valid_truth.csv", index=False)
    if chosen is not None:
        chosen[[id_col, *targets]].to_csv(tmp / "selection_truth.csv", index=False)

    classes = _sorted_labels(pd.concat([train[t] for t in targets])) if task.task_type == "classification" else []
    candidates = [id_col, *(c for c in train.columns if c not in (id_col, *targets) and train[c].dtype == object)]
    images = assets.find_images(train, test, candidates, folders)
    columns = [_column_info(train[c]) for c in train.columns
               if c not in (*targets, id_col) and (images is None or c != images.column)]
    ctx = TaskContext(
        name=task.name, goal=task.goal, task_type=task.task_type, metric=task.metric, maximize=maximize,
        proba=proba, target=task.target, targets=targets if len(targets) > 1 else [], id_column=id_col,
        prediction_columns=pred_cols, classes=classes,
        columns=columns, n_train=len(fit_part), n_valid=len(valid), n_test=len(test),
        files=sorted(p.name for p in (tmp / "full").iterdir()), seed=task.seed,
        modality=task.modality or assets.modality(columns, images), assets=list(infos.values()), images=images)
    (tmp / "manifest.json").write_text(json.dumps({"stamp": stamp, "context": ctx.model_dump()}, indent=1))
    tmp.rename(root)  # the folder appears whole or not at all
    return PreparedData(root / "search", root / "full", root / "valid_truth.csv", ctx, _selection_file(root))


ASSETS = "assets"  # under output/data: the task's archives, unpacked


def _assets(task: Task, unpack_into: Path, final: Path):
    """Each provided folder as it is, each archive as itself and as the folder it unpacks into (under
    ``unpack_into``, which becomes ``final``) unless a provided folder has that name already. Returns (./input/
    name -> the path it links to once the prepared folder is in place, folder name -> where it is now, folder
    name -> its description)."""
    links: dict[str, Path] = {}
    folders: dict[str, Path] = {}
    infos: dict[str, AssetInfo] = {}
    given = {p.name for p in task.assets if p.is_dir()}
    for path in task.assets:
        links[path.name] = path
        if path.is_dir():
            folders[path.name], infos[path.name] = path, assets.describe(path.name, path)
            continue
        stem = assets.archive_stem(path.name)
        if stem in given or stem in links:
            continue
        unpacked = assets.unpack(path, unpack_into / stem)
        links[stem] = final / unpacked.relative_to(unpack_into)
        folders[stem], infos[stem] = unpacked, assets.describe(stem, unpacked, archive=path.name)
    return links, folders, infos


AUTO_FOLDS, AUTO_FOLD_ROWS = 3, 5000  # small data: the noise of a small validation set outweighs K runs' cost


def fold_count(setting: int | str, search_rows: int) -> int:
    """The folds the search's attempts are scored on (1: the held-out validation rows only)."""
    if setting == "auto":
        return AUTO_FOLDS if search_rows <= AUTO_FOLD_ROWS else 1
    return max(1, min(int(setting), search_rows // 2))


MIN_SELECTION_ROWS = 20  # fewer validation rows cannot be split into two halves that each say anything


def _selection_split(valid: pd.DataFrame, task: Task, classification: bool):
    """(the rows the search scores on, the rows that choose the final solution or None): every script predicts
    all validation rows; many attempts scored on one set of rows flatter the best of them, so the final choice is
    made on rows no attempt was chosen on."""
    share = task.validation.selection
    if share <= 0 or len(valid) < 2 * MIN_SELECTION_ROWS:
        return valid, None
    stratify = _stratify(valid[task.target]) if classification and len(task.targets) == 1 else None
    scored, chosen = train_test_split(valid, test_size=share, random_state=task.seed + 1, stratify=stratify)
    return scored, chosen


def _selection_file(root: Path) -> Path | None:
    path = root / "selection_truth.csv"
    return path if path.is_file() else None


def _stamp(task: Task) -> str:
    h = hashlib.sha256()
    for p in [task.train, *([task.test] if task.test else []),
              *([task.sample_submission] if task.sample_submission else []), *task.extra_files]:
        st = p.stat()
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    for p in task.assets:
        h.update(f"{p}:{assets.stamp(p)}".encode())
    h.update(json.dumps(["final run on every labelled row", "assets linked", task.modality, list(task.targets), task.id_column, task.seed,
                         task.validation.fraction, task.validation.selection, task.validation.folds,
                         task.budget.search_rows,
                         list(task.prediction_columns)]).encode())
    return h.hexdigest()


def _sorted_labels(y: pd.Series) -> list[str]:
    """Class labels as strings, in the order scikit-learn sorts them (numerically for numbers)."""
    values = y.dropna().unique()
    try:
        values = sorted(values)
    except TypeError:
        values = sorted(values, key=str)
    return [str(v.item() if hasattr(v, "item") else v) for v in values]


def _whole_labels(y: pd.Series) -> pd.Series:
    """Whole-number float labels as integers: a label column with missing targets is read as floats, and its
    classes must keep the names the sample's probability columns give them ("1", not "1.0")."""
    if pd.api.types.is_float_dtype(y) and len(y) and bool((y == y.round()).all()):
        return y.astype("int64")
    return y


def _stratify(y: pd.Series) -> pd.Series | None:
    counts = y.value_counts()
    return y if len(counts) > 1 and counts.min() >= 2 else None


def _sample(task: Task, test: pd.DataFrame, id_col: str, pred_cols: list[str]) -> pd.DataFrame:
    if task.sample_submission is not None:
        sample = pd.read_csv(task.sample_submission)
        if len(sample) == len(test):
            return sample
    sample = pd.DataFrame({id_col: test[id_col]})
    for col in pred_cols:
        sample[col] = 0
    return sample


def _column_info(s: pd.Series) -> ColumnInfo:
    missing = float(s.isna().mean())
    unique = int(s.nunique(dropna=True))
    if pd.api.types.is_bool_dtype(s):
        kind = "boolean"
    elif pd.api.types.is_numeric_dtype(s):
        kind = "numeric"
    else:
        text = s.dropna().astype(str)
        long_text = len(text) and text.str.len().mean() > 40 and unique > 0.5 * len(text)
        kind = "text" if long_text else ("datetime" if _looks_like_dates(text) else "categorical")
    values = s.dropna() if kind == "numeric" else None  # only a numeric column is copied without its gaps
    integer = values is not None and len(values) > 0 and bool((values == values.round()).all())
    return ColumnInfo(name=str(s.name), dtype=kind, missing=round(missing, 4), unique=unique, integer=integer)


def _looks_like_dates(text: pd.Series) -> bool:
    """Nearly every value parses as a date (short codes like 'A1' are never taken for dates)."""
    sample = text.head(200)
    if sample.empty or sample.str.len().min() < 6:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.95)
