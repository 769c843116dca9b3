"""Fixtures for the step-wise RL tests: real run stores from short real pipeline runs (two tasks, so a split by task
has both sides), and the step dataset built from them. Shared by the whole session: the runs take about a minute."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_diabetes, load_iris

ROOT = Path(__file__).resolve().parents[1]
# A generous clock: the runs end when their plans are done (about a minute), and under load a script still gets
# its full run_timeout instead of what a nearly spent budget leaves (which times every refinement step out).
BUDGET = {"total_seconds": 600, "run_timeout": 60, "models": 2, "plans": 3, "outer_steps": 2, "ensemble_rounds": 0,
          "debug_retries": 0}


def write_task(folder: Path, name: str) -> Path:
    """A small competition folder (iris: classification; diabetes: regression) with its task.yaml."""
    if name == "iris":
        data = load_iris(as_frame=True)
        frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
        frame["species"] = data.target_names[data.target]
        frame, target, metric = frame.drop(columns="target"), "species", "accuracy"
    else:
        frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
        target, metric = "progression", "rmse"
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.insert(0, "id", np.arange(1000, 1000 + len(frame)))
    folder.mkdir(parents=True, exist_ok=True)
    frame.iloc[30:].to_csv(folder / "train.csv", index=False)
    frame.iloc[:30].drop(columns=target).to_csv(folder / "test.csv", index=False)
    (folder / "private").mkdir(exist_ok=True)  # the grader's answers: a suite of these folders can be benched
    frame.iloc[:30][["id", target]].to_csv(folder / "private" / "answers.csv", index=False)
    (folder / "description.md").write_text(f"# {name}\n\nPredict {target} for each row of test.csv.\n")
    spec = {"name": name, "goal_file": "description.md",
            "data": {"train": "train.csv", "test": "test.csv", "target": target, "id": "id"},
            "metric": metric, "budget": BUDGET, "seed": 0, "strategy": {"anytime": False},
            "executor": {"name": "local", "options": {"workers": 2}}}
    (folder / "task.yaml").write_text(yaml.safe_dump(spec))
    return folder / "task.yaml"


@pytest.fixture(scope="session")
def recorded_runs(tmp_path_factory) -> Path:
    """A folder holding the output (runs.sqlite, prepared data) of one real heuristic run per task."""
    root = tmp_path_factory.mktemp("rl-runs")
    for name in ("iris", "diabetes"):
        task = write_task(root / "tasks" / name, name)
        done = subprocess.run([sys.executable, "-m", "core.run", str(task), "--out", str(root / "out" / name)],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    return root / "out"


@pytest.fixture(scope="session")
def step_splits(recorded_runs):
    """The step dataset of ``recorded_runs``: diabetes for training, iris held out."""
    from rl.dataset import build_dataset

    return build_dataset([recorded_runs], eval_tasks=["iris"])


@pytest.fixture(scope="session")
def one_demo_adapter(step_splits, tmp_path_factory) -> dict:
    """A training state, the structured action taught (the catalogue's third for it, so a pool of one leaves it to
    an expert) and a LoRA adapter fitted to that one demonstration: shared, since each fit takes a CPU minute or two."""
    from core.local_llm import smollm2_dir
    from plugins.llm import actions
    from rl.experts import catalogue_actions
    from rl.sft import SFTSettings, train_sft
    from rl.step import prompt_of, view_of

    step = next(s for s in step_splits["train"] if len(catalogue_actions(view_of(s), "structured", 3)) == 3)
    offered = catalogue_actions(view_of(step), "structured", 3)[2]
    action = actions.parse(actions.render(offered, "structured"), view_of(step), "structured")  # op-tagged, as parsed
    example = {"prompt": prompt_of(step, "structured"),
               "completion": [{"role": "assistant", "content": actions.render(action, "structured")}]}
    adapter = train_sft(smollm2_dir(), [example], tmp_path_factory.mktemp("one-demo") / "adapter",
                        SFTSettings(max_steps=25, learning_rate=3e-3, lora_dropout=0.0))
    return {"step": step, "action": action, "adapter": adapter}
