"""Checks a predictions file against the sample submission: columns, ids, row count, no missing values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def submission_problems(path: Path, sample: Path, id_column: str | None) -> list[str]:
    """Everything wrong with ``path`` as a submission shaped like ``sample`` (empty list: valid)."""
    if not path.is_file():
        return [f"{path.name} was not written"]
    try:
        sub = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - the script wrote something unreadable
        return [f"{path.name} is not a readable CSV: {type(exc).__name__}: {exc}"]
    ref = pd.read_csv(sample)
    return frame_problems(sub, ref, id_column, name=path.name)


def frame_problems(sub: pd.DataFrame, ref: pd.DataFrame, id_column: str | None, name: str = "submission") -> list[str]:
    problems = []
    if [str(c) for c in sub.columns] != [str(c) for c in ref.columns]:
        problems.append(f"{name} has columns {list(sub.columns)[:8]}, expected {list(ref.columns)[:8]}")
        return problems
    if len(sub) != len(ref):
        problems.append(f"{name} has {len(sub)} rows, expected {len(ref)}")
    if id_column is not None and id_column in sub.columns:
        if sub[id_column].duplicated().any():
            problems.append(f"{name} has duplicate ids in '{id_column}'")
        if set(sub[id_column].astype(str)) != set(ref[id_column].astype(str)):
            problems.append(f"{name} ids in '{id_column}' differ from the sample's")
    nan_cols = [str(c) for c in sub.columns if sub[c].isna().any()]
    if nan_cols:
        problems.append(f"{name} has missing values in {nan_cols[:5]}")
    return problems
