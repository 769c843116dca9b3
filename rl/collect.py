"""Collecting experience: the pipeline run over a suite's tasks (per policy and seed), each run writing the run store
that the step dataset is built from. Finished runs are kept and skipped; an interrupted one is resumed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from core.bench import load_suite
from core.files import write_atomic
from core.errors import UserError
from core.task import read_yaml_mapping


def run_folder(out: Path, task: str, policy: str, seed: int) -> Path:
    return out / f"{task}-{policy}-s{seed}"


def collect(suite_path: str | Path, out: str | Path, *, policies: list[dict], seeds: list[int],
            budget: float | None = None, tasks: list[str] | None = None, executor: dict | None = None,
            log: Callable[[str], None] = print) -> list[Path]:
    """Run every (task, policy, seed) of the suite into ``out``; returns the run folders (each has a runs.sqlite).

    ``policies``: task.yaml ``policy`` entries ({name, options}); ``budget``: seconds per run (default: the suite's);
    ``executor``: a task.yaml ``executor`` entry every run uses (default: each task's own).
    """
    _, bench_tasks, _ = load_suite(suite_path, budget=budget, only=tasks)
    out = Path(out).resolve()
    folders = []
    for bt in bench_tasks:
        for policy in policies:
            for seed in seeds:
                folder = run_folder(out, bt.name, policy["name"], seed)
                folders.append(folder)
                state = _state(folder)
                if state == "finished":
                    log(f"collect: {folder.name}: already recorded")
                    continue
                task_yaml = task_yaml_copy(bt.folder, folder, policy, seed, executor)
                log(f"collect: {folder.name}: running ({bt.budget:g} s budget)")
                args = [sys.executable, "-m", "core.run", str(task_yaml), "--budget", str(bt.budget)]
                if state == "unfinished":
                    args.append("--resume")
                done = subprocess.run(args, capture_output=True, text=True)
                # 1 is also a run that ended without a valid submission: recorded, and finished all the same
                if done.returncode not in (0, 1) or _state(folder) != "finished":
                    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                    raise UserError(f"collect: {folder.name}: the run failed ({tail}); see {folder / 'run.log'}")
    return folders


def _state(folder: Path) -> str:
    run = folder / "run" / "run.json"
    if not run.is_file():
        return "new"
    return "finished" if json.loads(run.read_text()).get("status") == "finished" else "unfinished"


def task_yaml_copy(task_folder: Path, folder: Path, policy: dict, seed: int, executor: dict | None = None) -> Path:
    """A copy of the task's task.yaml pointing at its data, with this collection's policy, seed and output (and
    executor, when given)."""
    raw = read_yaml_mapping(task_folder / "task.yaml", UserError, "a task.yaml")
    data = dict(raw.get("data") or {})
    if "dir" in data:
        data["dir"] = str((task_folder / data["dir"]).resolve())
    for key in ("train", "test", "sample_submission"):
        if isinstance(data.get(key), str):
            data[key] = str((task_folder / data[key]).resolve())
    data["extra_files"] = [str((task_folder / f).resolve()) for f in data.get("extra_files") or []]
    if isinstance(raw.get("goal_file"), str):
        raw["goal_file"] = str((task_folder / raw["goal_file"]).resolve())
    raw.update(data=data, seed=seed, policy=policy, output=str(folder / "run"))
    if executor is not None:
        raw["executor"] = executor
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "task.yaml"
    write_atomic(path, yaml.safe_dump(raw, sort_keys=False))
    return path
