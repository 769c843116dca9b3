"""Ensembles work from stored predictions: the input folder that holds each member's outputs, and the standalone
script that reruns the members and combines them."""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
from pathlib import Path

from core.files import folder_atomic
from core.folds import FOLDS_DIR, merge_predictions


def members_for(rc, state: dict) -> list[dict]:
    """The ensemble's members: at most ``strategy.ensemble_size`` distinct solutions (by code), each track's head
    first (MLE-STAR's parallel solutions: a different model refined on its own), best first, then the rest of the
    pool by score. Chosen by score alone, wilms-relapse's five members were all refinements of its linear model, and
    the LightGBM track it had refined from AUC 0.665 to 0.713 never joined an ensemble."""
    def ranked(attempts) -> list[dict]:
        real = [a for a in attempts if a and a.get("score") is not None and not a.get("members")]
        return sorted(real, key=lambda a: a["score"], reverse=rc.metric.maximize)

    heads = ranked([state.get("best"), state.get("head"), *(state.get("tracks") or {}).values()])
    seen, out = set(), []
    for a in [*heads, *ranked(state.get("pool", []))]:
        h = hashlib.sha256(a["code"].encode()).hexdigest()
        if h not in seen:
            seen.add(h)
            out.append(a)
    return out[: rc.task.strategy.ensemble_size]


def candidate_names(members: list[dict]) -> list[str]:
    return [f"c{i}" for i in range(len(members))]


def ensemble_input(base: Path, members: list[dict], dest: Path, refits: list[dict] | None = None) -> Path:
    """An input folder with the task's files plus each member's predictions under candidates/<name>/.

    With ``refits`` (the members rerun on every labelled row), a candidate's test predictions come from its refit
    and its validation predictions from the member's own run, whose model never saw those rows: an ensemble that
    learns from validation predictions (stacking) must not learn from a model's predictions on its training rows."""
    with folder_atomic(dest) as tmp:
        tmp.rmdir()  # copytree makes the folder itself
        shutil.copytree(base, tmp, ignore=lambda folder, names: [FOLDS_DIR] if Path(folder) == Path(base) else [])
        for i, (name, m) in enumerate(zip(candidate_names(members), members)):
            d = tmp / "candidates" / name
            d.mkdir(parents=True)
            test_source = refits[i] if refits is not None else m
            shutil.copyfile(Path(m["workdir"]) / "val_predictions.csv", d / "val_predictions.csv")
            shutil.copyfile(Path(test_source["workdir"]) / "submission.csv", d / "submission.csv")
    return dest


STANDALONE = '''"""Final solution (an ensemble), written by mlestar: run it in a folder whose ./input/ holds the task's files.

It runs each member solution on every row of ./input/train.csv, for its test predictions, and for its validation
predictions (an ensemble may learn from them, so no member may have seen those rows) once per fold of
./input/validation_folds/ (merged: each row from the fold that held it out), or, without folds, once without the
validation rows. Then the ensemble script combines them.
"""
import csv
import os
import shutil
import subprocess
import sys

import pandas as pd

MEMBERS = {members}
ENSEMBLE = {ensemble}
ID = {id_column!r}


def run_member(code, folder, input_dir):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    os.symlink(input_dir, os.path.join(folder, "input"))
    with open(os.path.join(folder, "solution.py"), "w") as fh:
        fh.write(code)
    subprocess.run([sys.executable, "solution.py"], cwd=folder, check=True)


def without_validation_rows(here):
    """./input/ with the rows of valid.csv left out of train.csv (compared by id, as written)."""
    folder = os.path.join(here, "input_without_validation")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for name in os.listdir(os.path.join(here, "input")):
        if name != "train.csv":
            os.symlink(os.path.join(here, "input", name), os.path.join(folder, name))
    with open(os.path.join(here, "input", "valid.csv"), newline="") as fh:
        rows = csv.DictReader(fh)
        held = {{row[ID] for row in rows}}
    with open(os.path.join(here, "input", "train.csv"), newline="") as fh, \
            open(os.path.join(folder, "train.csv"), "w", newline="") as out:
        reader = csv.reader(fh)
        header = next(reader)
        at = header.index(ID)
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(row for row in reader if row[at] not in held)
    return folder


{merge_predictions}

def validation_predictions(code, here, name):
    """The member's val_predictions.csv from models that never saw those rows."""
    folds = os.path.join(here, "input", "validation_folds")
    if not os.path.isdir(folds):
        folder = os.path.join(here, "members", name + "_without_validation")
        run_member(code, folder, without_validation_rows(here))
        return os.path.join(folder, "val_predictions.csv")
    frames = []
    for k in sorted(os.listdir(folds), key=int):
        folder = os.path.join(here, "members", name + "_fold" + k)
        run_member(code, folder, os.path.join(folds, k))
        frames.append(pd.read_csv(os.path.join(folder, "val_predictions.csv")))
    path = os.path.join(here, "members", name + "_val_predictions.csv")
    merge_predictions(frames).to_csv(path, index=False)
    return path


def main():
    here = os.getcwd()
    combine = os.path.join(here, "ensemble_run")
    shutil.rmtree(combine, ignore_errors=True)
    os.makedirs(os.path.join(combine, "input", "candidates"))
    for name in os.listdir(os.path.join(here, "input")):
        if name != "validation_folds":
            os.symlink(os.path.join(here, "input", name), os.path.join(combine, "input", name))
    for name, code in MEMBERS.items():
        validated = validation_predictions(code, here, name)
        refit = os.path.join(here, "members", name)
        run_member(code, refit, os.path.join(here, "input"))
        dest = os.path.join(combine, "input", "candidates", name)
        os.makedirs(dest)
        shutil.copyfile(validated, os.path.join(dest, "val_predictions.csv"))
        shutil.copyfile(os.path.join(refit, "submission.csv"), os.path.join(dest, "submission.csv"))
    with open(os.path.join(combine, "ensemble.py"), "w") as fh:
        fh.write(ENSEMBLE)
    subprocess.run([sys.executable, "ensemble.py"], cwd=combine, check=True)
    for f in ("val_predictions.csv", "submission.csv"):
        shutil.copyfile(os.path.join(combine, f), os.path.join(here, f))


if __name__ == "__main__":
    main()
'''


def standalone_ensemble(members: list[dict], ensemble_code: str, id_column: str) -> str:
    """One script that reproduces an ensemble's submission from ./input/ alone."""
    codes = {name: m["code"] for name, m in zip(candidate_names(members), members)}
    # the merge is the framework's own (its source, so both merge alike), the script stays self-contained
    merge = inspect.getsource(merge_predictions).replace("{", "{{").replace("}", "}}")
    return STANDALONE.replace("{merge_predictions}", merge).format(
        members=json.dumps(codes, indent=1), ensemble=json.dumps(ensemble_code), id_column=id_column)
