"""RL at scale, at the smallest size that shows it: ``python -m core.train`` under ``accelerate launch`` with two
processes on CPU (gloo) trains SFT then GRPO with only the main process writing, and ``core.train collect`` runs
its pipeline runs on a Ray cluster (a throwaway one on this machine, tests/ray_cluster.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rl_fixtures import write_task

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_config(path: Path) -> Path:
    """Two processes on this machine. MULTI_GPU is accelerate's torchrun launcher; on a machine without GPUs the
    processes join with gloo on the CPU (MULTI_CPU instead would need mpirun, and without it starts one process)."""
    path.write_text(yaml.safe_dump({
        "compute_environment": "LOCAL_MACHINE", "distributed_type": "MULTI_GPU", "num_processes": 2,
        "num_machines": 1, "machine_rank": 0, "main_process_port": free_port(), "mixed_precision": "no",
        "dynamo_config": {"dynamo_backend": "NO"}, "use_cpu": False}))
    return path


@pytest.mark.slow
def test_collect_runs_the_pipeline_s_scripts_on_a_ray_cluster(tmp_path):
    pytest.importorskip("ray")
    from core.ray_executor import NODE_FILE
    from ray_cluster import start_cluster

    task = write_task(tmp_path / "tasks" / "iris", "iris")
    small = yaml.safe_load(task.read_text())
    small["budget"].update(models=1, plans=1, outer_steps=1)  # one model, one refinement: a short run
    task.write_text(yaml.safe_dump(small))
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({"name": "one", "budget": 90, "tasks": [str(task.parent)]}))
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({
        "output": "out", "data": {"stores": ["out/experience"]},
        "collect": {"suite": "suite.yaml", "seeds": [0], "executor": {"name": "ray", "options": {"address": "auto"}}}}))

    cluster = start_cluster(nodes=1, cpus=2)
    try:
        # RAY_TMPDIR: where `address: auto` finds the cluster this machine belongs to (ours keeps its files there)
        done = subprocess.run([sys.executable, "-m", "core.train", "collect", str(path)], capture_output=True,
                              text=True, cwd=ROOT, timeout=600, env={**os.environ, "RAY_TMPDIR": str(cluster.root)})
    finally:
        cluster.stop()

    assert done.returncode == 0, done.stderr[-4000:]
    run = tmp_path / "out" / "experience" / "iris-heuristic-s0" / "run"
    assert (run / "run.json").is_file(), done.stdout[-2000:] + done.stderr[-4000:]
    ran = [p.parent for p in (run / "runs").glob("*/result.json")]
    assert ran and all((p / NODE_FILE).is_file() for p in ran)  # every script went through Ray

    from rl.dataset import build_dataset

    assert build_dataset([tmp_path / "out" / "experience"], eval_tasks=[])["train"]  # the experience RL trains on


@pytest.mark.slow
def test_two_processes_train_sft_then_grpo_and_only_the_main_one_writes(recorded_runs, tmp_path):
    spec = {"action_format": "structured", "output": "out", "seed": 0,
            "data": {"stores": [str(recorded_runs)], "eval_tasks": ["iris"]},
            "executor": {"name": "local", "options": {"workers": 2}}, "timeout": 60,
            "sft": {"per_state": 2, "pool": 3, "max_steps": 2, "max_states": 1},
            # one prompt × two actions a step: one action sampled by each process
            "rl": {"max_steps": 2, "prompts_per_step": 1, "num_generations": 2, "max_completion_length": 32,
                   "cpu_threads": 1}}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(spec))
    config = accelerate_config(tmp_path / "accelerate.yaml")

    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                           "-m", "core.train", "train", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})

    assert done.returncode == 0, done.stderr[-4000:]
    out = tmp_path / "out"
    # both processes trained: the launch had two, and each sampled one of every step's two actions
    assert json.loads((out / "train.json").read_text())["processes"] == 2
    assert json.loads((out / "rl" / "grpo.json").read_text())["processes"] == 2
    actions = [json.loads(line) for line in (out / "rl" / "rewards.jsonl").read_text().splitlines()]
    assert sorted((a["step"], a["process"]) for a in actions) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    # ... and one wrote: each stage's adapter once, one log line per step, the summary printed once
    adapters = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("adapter_config.json"))
    assert adapters == ["adapter", "rl/adapter", "sft/adapter"]
    for stage in ("sft", "rl"):
        records = [json.loads(line) for line in (out / stage / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert done.stdout.count("use it in task.yaml") == 1
    # one run folder, shared by nobody: no second executor folder, no scratch or rank-named folder left behind
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "dataset", "executor", "rl", "sft", "train.json"]
    written = [p for p in out.rglob("*") if "executor" not in p.relative_to(out).parts]  # (scripts write there)
    assert [p for p in written if p.name.startswith(".") or "rank" in p.name] == []

    from peft import PeftModel

    from core.local_llm import load_causal_lm, smollm2_dir

    model, _ = load_causal_lm(smollm2_dir(), adapter=out / "adapter", device="cpu")
    assert isinstance(model, PeftModel)


def test_collect_executor_replaces_each_task_s_own_in_the_run_s_task_yaml(tmp_path):
    from rl.collect import task_yaml_copy

    task = write_task(tmp_path / "tasks" / "iris", "iris")  # its own executor: local, 2 workers
    ray = {"name": "ray", "options": {"address": "auto"}}

    own = yaml.safe_load(task_yaml_copy(task.parent, tmp_path / "a", {"name": "heuristic"}, 0).read_text())
    on_ray = yaml.safe_load(task_yaml_copy(task.parent, tmp_path / "b", {"name": "heuristic"}, 0, ray).read_text())

    assert own["executor"] == {"name": "local", "options": {"workers": 2}}
    assert on_ray["executor"] == ray
