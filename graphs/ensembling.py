"""Ensembles work from stored predictions: the input folder that holds each member's outputs, and the standalone
script that reruns the members and combines them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

PREDICTION_FILES = ("val_predictions.csv", "submission.csv")


def candidate_names(members: list[dict]) -> list[str]:
    return [f"c{i}" for i in range(len(members))]


def ensemble_input(base: Path, members: list[dict], dest: Path) -> Path:
    """An input folder with the task's files plus each member's predictions under candidates/<name>/."""
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(base, tmp)
    for name, m in zip(candidate_names(members), members):
        d = tmp / "candidates" / name
        d.mkdir(parents=True)
        for f in PREDICTION_FILES:
            shutil.copyfile(Path(m["workdir"]) / f, d / f)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


STANDALONE = '''"""Final solution (an ensemble), written by mlestar: run it in a folder whose ./input/ holds the task's files.

It runs each member solution in its own folder, then combines their predictions with the ensemble script.
"""
import os
import shutil
import subprocess
import sys

MEMBERS = {members}
ENSEMBLE = {ensemble}
FILES = {files}


def main():
    here = os.getcwd()
    combine = os.path.join(here, "ensemble_run")
    shutil.rmtree(combine, ignore_errors=True)
    os.makedirs(os.path.join(combine, "input", "candidates"))
    for name in os.listdir(os.path.join(here, "input")):
        os.symlink(os.path.join(here, "input", name), os.path.join(combine, "input", name))
    for name, code in MEMBERS.items():
        folder = os.path.join(here, "members", name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        os.symlink(os.path.join(here, "input"), os.path.join(folder, "input"))
        with open(os.path.join(folder, "solution.py"), "w") as fh:
            fh.write(code)
        subprocess.run([sys.executable, "solution.py"], cwd=folder, check=True)
        dest = os.path.join(combine, "input", "candidates", name)
        os.makedirs(dest)
        for f in FILES:
            shutil.copyfile(os.path.join(folder, f), os.path.join(dest, f))
    with open(os.path.join(combine, "ensemble.py"), "w") as fh:
        fh.write(ENSEMBLE)
    subprocess.run([sys.executable, "ensemble.py"], cwd=combine, check=True)
    for f in FILES:
        shutil.copyfile(os.path.join(combine, f), os.path.join(here, f))


if __name__ == "__main__":
    main()
'''


def standalone_ensemble(members: list[dict], ensemble_code: str) -> str:
    """One script that reproduces an ensemble's submission from ./input/ alone."""
    codes = {name: m["code"] for name, m in zip(candidate_names(members), members)}
    return STANDALONE.format(members=json.dumps(codes, indent=1), ensemble=json.dumps(ensemble_code),
                             files=repr(PREDICTION_FILES))
