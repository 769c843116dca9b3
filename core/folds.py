"""Cross-validated search folders: an input folder with ``folds/<k>/`` subfolders is run once per fold, and the
folds' predictions are merged into one set (each search row predicted by the fold that held it out)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FOLDS_DIR = "folds"
VALIDATION_FOLDS = "validation_folds"  # the same folds beside the final run's data, where no executor splits a run


def fold_dirs(input_dir: Path) -> list[Path]:
    """The fold input folders under ``input_dir`` in fold order (empty: a plain input folder, run once)."""
    root = Path(input_dir) / FOLDS_DIR
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def merge_predictions(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One prediction per id from the folds' frames (the id is the first column): a row that one fold predicted
    (a held-out search row) keeps that prediction; a row every fold predicted (a selection or test row) gets their
    mean, or for labels the most common one (ties: the one seen first)."""
    if len(frames) == 1:
        return frames[0]
    id_column = frames[0].columns[0]
    stacked = pd.concat(frames, ignore_index=True)
    keys = stacked[id_column].astype(str).rename("key")
    grouped = stacked.groupby(keys, sort=False)
    merged = grouped[[id_column]].first()
    for column in stacked.columns[1:]:
        if pd.api.types.is_numeric_dtype(stacked[column]):
            merged[column] = grouped[column].mean()
        else:
            merged[column] = _most_common(keys, stacked[column]).reindex(merged.index)
    return merged.reset_index(drop=True)


def _most_common(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Per key, its most common value; ties go to the value seen first. (One vectorised count: a Python function
    per group took seconds per attempt on a few thousand rows.)"""
    votes = pd.DataFrame({"key": keys, "value": values, "seen": range(len(values))})
    counts = votes.groupby(["key", "value"], sort=False, dropna=False).agg(n=("seen", "size"), first=("seen", "min"))
    counts = counts.reset_index().sort_values(["n", "first"], ascending=[False, True], kind="stable")
    return counts.drop_duplicates("key").set_index("key")["value"]
