"""Running the agent the way users do, for the pipeline tests: a copy of a bundled example with a small budget, the
CLI in a subprocess, and a run killed (SIGKILL, its whole process group) at a chosen moment."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def task_copy(tmp_path: Path, example: str, anytime: bool = False, workers: int = 2, **budget) -> Path:
    """A copy of a bundled example with a small budget and its output in tmp_path; by default only MLE-STAR's first
    pass runs (the anytime search would spend the whole budget)."""
    folder = tmp_path / example
    shutil.copytree(EXAMPLES / example, folder, ignore=shutil.ignore_patterns("private"))
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    spec["budget"] = {**spec["budget"], **budget}
    spec["output"] = str(tmp_path / "out")
    spec["executor"] = {"name": "local", "options": {"workers": workers}}
    spec["strategy"] = {**spec.get("strategy", {}), "anytime": anytime}
    (folder / "task.yaml").write_text(yaml.safe_dump(spec))
    return folder / "task.yaml"


# A hand-written script in blocks for a tabular classification folder (penguins): a one-split decision tree on
# the numeric columns, for tests whose policy writes its own scripts
TREE_SCRIPT = '''# [block: imports]
import pandas as pd
from sklearn.metrics import accuracy_score
from sklearn.tree import DecisionTreeClassifier

# [block: load_data]
train = pd.read_csv("input/train.csv")
valid = pd.read_csv("input/valid.csv")
test = pd.read_csv("input/test.csv")
sample = pd.read_csv("input/sample_submission.csv")
id_col, target = sample.columns[0], sample.columns[1]
features = [c for c in train.columns if c not in (id_col, target) and pd.api.types.is_numeric_dtype(train[c])]
medians = train[features].median()
X_train, X_valid, X_test = (f[features].fillna(medians) for f in (train, valid, test))

# [block: model]
model = DecisionTreeClassifier(max_depth=1, random_state=0)

# [block: predict]
model.fit(X_train, train[target])
pred_valid = model.predict(X_valid)
pd.DataFrame({id_col: valid[id_col], target: pred_valid}).to_csv("val_predictions.csv", index=False)
pd.DataFrame({id_col: test[id_col], target: model.predict(X_test)}).to_csv("submission.csv", index=False)
print(f"Final Validation Performance: {accuracy_score(valid[target], pred_valid)}")
'''


def with_policy_plugin(tmp_path: Path, example: str, policy: object, budget: dict, **spec_items):
    """(task, registry) of a copy of a bundled example run in this process by ``policy`` (an object with a ``name``),
    which a plugin object registers as a third party's would, with the example's budget updated by ``budget`` and
    the other task.yaml items given."""
    from core.hookspecs import hookimpl
    from core.loading import load_with_plugins

    class PolicyPlugin:
        @hookimpl
        def register_policies(self, register):
            register(policy.name, lambda options, **kw: policy)

    folder = tmp_path / example
    shutil.copytree(EXAMPLES / example, folder, ignore=shutil.ignore_patterns("private"))
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    spec.update(policy=policy.name, output=str(tmp_path / "out"), budget={**spec["budget"], **budget}, **spec_items)
    (folder / "task.yaml").write_text(yaml.safe_dump(spec))
    return load_with_plugins(folder / "task.yaml", extra_plugins=[(policy.name, PolicyPlugin())])


def core_run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.run", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=900, **kw)


def kill_when(task: Path, out: Path, ready, settle: float = 0.0, args: tuple[str, ...] = (),
              command: tuple[str, ...] = ("-m", "core.run")) -> list[str]:
    """Start a run (``python command task args``: the CLI by default; ``args`` e.g. --resume), SIGKILL it (its
    whole process group) once ``ready(nodes of its attempts so far)``, and return those nodes; fails when the run
    ends first."""
    proc = subprocess.Popen([sys.executable, *command, str(task), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, nodes = time.time() + 300, []
    try:
        while time.time() < deadline:
            time.sleep(0.25)
            if (out / "runs.sqlite").is_file():
                db = sqlite3.connect(out / "runs.sqlite")
                try:
                    nodes = [n for (n,) in db.execute("SELECT node FROM attempts")]
                except sqlite3.OperationalError:  # the store is being created
                    nodes = []
                finally:
                    db.close()
                if ready(nodes):
                    time.sleep(settle)
                    break
        assert proc.poll() is None, "the run ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return nodes


def logged(out: Path, text: str) -> bool:
    """Whether the run's log holds ``text`` (a node's closing line tells the next node has started)."""
    log = out / "run.log"
    return log.is_file() and text in log.read_text()


def attempts(out: Path) -> list[dict]:
    db = sqlite3.connect(out / "runs.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT attempt_id, node, cache_key, cached FROM attempts "
                                            "ORDER BY attempt_id")]
    finally:
        db.close()
