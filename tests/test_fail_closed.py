"""Fail closed: where bubblewrap cannot run, code the framework did not write (an LLM policy's) is refused with one
line naming the fix, unless the user opts out with ``isolation: none``; the framework's own scripts still run, and
the report says which isolation confined them. Bubblewrap is taken away for real: the run's PATH lacks it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def penguins(tmp_path: Path, **spec) -> Path:
    folder = tmp_path / "penguins"
    shutil.copytree(ROOT / "examples" / "penguins", folder, ignore=shutil.ignore_patterns("private"))
    task = yaml.safe_load((folder / "task.yaml").read_text())
    task.update(output=str(tmp_path / "out"), **spec)
    (folder / "task.yaml").write_text(yaml.safe_dump(task))
    return folder / "task.yaml"


def run_without_bubblewrap(task: Path) -> subprocess.CompletedProcess:
    bin_dir = tempfile_bin(task.parent)
    assert shutil.which("bwrap", path=str(bin_dir)) is None
    env = {**os.environ, "PATH": str(bin_dir)}
    return subprocess.run([sys.executable, "-m", "core.run", str(task)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def tempfile_bin(folder: Path) -> Path:
    """A PATH holding only this interpreter: no bwrap on it."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    link = bin_dir / "python"
    if not link.exists():
        link.symlink_to(sys.executable)
    return bin_dir


LLM = {"name": "openai", "options": {"model": "any", "base_url": "http://127.0.0.1:9/v1"}}


def test_without_bubblewrap_an_llm_policys_code_is_refused_with_one_line_naming_the_fix(tmp_path):
    done = run_without_bubblewrap(penguins(tmp_path, policy=LLM))

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "task.yaml" in lines[0] and "install bubblewrap" in lines[0] and "isolation: none" in lines[0]
    assert not (tmp_path / "out" / "runs").exists() or not any((tmp_path / "out" / "runs").iterdir())


def test_without_bubblewrap_the_framework_s_own_scripts_run_and_the_report_says_unisolated(tmp_path):
    task = penguins(tmp_path, budget={"total_seconds": 30, "models": 2, "plans": 1, "outer_steps": 1,
                                      "ensemble_rounds": 0}, strategy={"anytime": False})
    done = run_without_bubblewrap(task)

    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["isolation"] == "none"
    assert "scripts isolated by `none`" in (tmp_path / "out" / "report.md").read_text()


def test_an_explicit_isolation_none_lets_an_llm_policy_run_unisolated(tmp_path, registry):
    from core.errors import TaskError
    from core.executor import ExecutorOptions
    from core.local_executor import LocalExecutor
    from core.task import load_task
    from graphs.runner import check_isolation
    from plugins.policy_openai import OpenAIPolicy

    unisolated = LocalExecutor(ExecutorOptions(workers=1, isolation="none"), out_dir=tmp_path / "x")
    for isolation, refused in (("none", False), ("auto", True)):
        task = load_task(penguins(tmp_path / isolation, policy=LLM, executor={
            "name": "local", "options": {"isolation": isolation}}), metrics=registry.metrics)
        policy = OpenAIPolicy(dict(LLM["options"]), task=task, store=None, registry=registry, run_id="t")
        try:
            check_isolation(task, policy, unisolated)
            assert not refused
        except TaskError as exc:
            assert refused and "isolation: none" in str(exc)


def test_an_unisolated_script_that_rewrites_the_validation_truth_is_still_scored_against_the_real_one(tmp_path):
    from graphs.evaluate import Job, evaluate
    from graphs.runner import open_run

    task = penguins(tmp_path, executor={"name": "local", "options": {"workers": 1, "isolation": "none"}})
    rc = open_run(task)
    truth = rc.data.truth
    # The script predicts one class for every row and rewrites the truth file (an absolute path it found by a
    # search of the disk) so that its predictions match it; it must not score 1.
    code = f"""
import pandas as pd
valid = pd.read_csv("input/valid.csv")
pd.DataFrame({{"id": valid["id"], "species": "Adelie"}}).to_csv("val_predictions.csv", index=False)
test = pd.read_csv("input/test.csv")
pd.DataFrame({{"id": test["id"], "species": "Adelie"}}).to_csv("submission.csv", index=False)
forged = pd.read_csv({str(truth)!r})
forged["species"] = "Adelie"
forged.to_csv({str(truth)!r}, index=False)
print("Final Validation Performance: 1.0")
"""
    [attempt] = evaluate(rc, [Job(code, "draft", "forger")], debug=False)

    assert set(pd.read_csv(truth)["species"]) == {"Adelie"}  # it did rewrite the file
    assert attempt["status"] == "ok", attempt["message"]
    assert attempt["reported"] == 1.0 and attempt["score"] < 0.6  # the run scored it on the truth it read first
