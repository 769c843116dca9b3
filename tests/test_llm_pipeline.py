"""A whole run with the ``hf`` policy (SmolLM2-135M-Instruct in-process, small caps) on a copy of examples/penguins
with a tiny budget: the run ends with a valid submission whatever the model writes (its failures are debugged,
retried or replaced by the heuristic fallback), and its calls are in the run store for the usage summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from core.store import RunStore
from plugins.llm import usage_summary, usage_table

ROOT = Path(__file__).resolve().parents[1]
CAPS = {"summarize_search": 96, "write_initial": 256, "merge": 256, "simplify_block": 96, "summarize_ablation": 64,
        "plan_refinement": 96, "implement_plan": 128, "debug": 256, "plan_ensemble": 64, "implement_ensemble": 192,
        "fix_leakage": 256, "use_all_data": 256}


@pytest.mark.slow
def test_a_run_with_the_hf_policy_ends_with_a_valid_submission(smollm2, tmp_path):
    task_dir = tmp_path / "penguins"
    task_dir.mkdir()
    for name in ("description.md", "train.csv", "test.csv"):
        shutil.copyfile(ROOT / "examples" / "penguins" / name, task_dir / name)
    task = yaml.safe_load((ROOT / "examples" / "penguins" / "task.yaml").read_text())
    task.update(
        budget={"total_seconds": 420, "run_timeout": 60, "models": 2, "plans": 1, "outer_steps": 1,
                "ensemble_rounds": 1, "debug_retries": 1},
        policy={"name": "hf", "options": {"max_tokens": CAPS, "max_prompt_chars": 2500, "timeout": 60}},
        strategy={"anytime": False}, output=str(tmp_path / "out"))  # the first pass only: this test is not about the anytime search
    (task_dir / "task.yaml").write_text(yaml.safe_dump(task))

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "core.run", str(task_dir / "task.yaml")], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"})
    seconds = time.monotonic() - started
    out = tmp_path / "out"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    submission = pd.read_csv(out / "submission.csv")
    test = pd.read_csv(task_dir / "test.csv")
    assert list(submission.columns) == ["id", "species"]
    assert sorted(submission["id"]) == sorted(test["id"])
    assert set(submission["species"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    result = json.loads((out / "result.json").read_text())
    assert result["final"]["status"] == "ok" if "final" in result else True

    store = RunStore(out / "runs.sqlite")
    calls = store.llm_calls()
    assert {c["model"] for c in calls} == {"smollm2-135m-instruct"}
    roles = {c["role"] for c in calls}
    assert {"write_initial", "simplify_block", "summarize_ablation", "plan_refinement"} <= roles
    assert all(c["node"] for c in calls)  # each call knows the graph node it was made from
    summary = usage_summary(store)
    assert summary["total"]["calls"] == len(calls)
    print(f"\nrun: {seconds:.0f}s\n" + usage_table(summary))
