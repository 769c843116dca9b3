"""``python -m core.train``: one clear line and exit code 2 for bad input, and the whole chain (dataset → SFT → GRPO
→ an on-policy round → an adapter the hf policy loads) at tiny scale on real recorded runs, resumable stage by
stage."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def train(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.train", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=1200)


@pytest.mark.parametrize("text, expected", [
    ("data: {dataset: ds}\nbase_modle: x\n", "base_modle: unknown key; did you mean 'base_model'?"),
    ("action_format: fancy\ndata: {dataset: ds}\n", "action_format: input should be 'structured' or 'free'"),
    ("data: {}\n", "give data.stores (run stores to build the step dataset from) or data.dataset"),
    ("data: {stores: [missing-runs]}\n", "data.stores.0: "),
    ("data: {dataset: ds}\nrl: {num_generations: 1}\n",
     "rl.num_generations: input should be greater than or equal to 2"),
    ("data: {dataset: ds}\nrl: {lr_scheduler: warmup}\n",
     "rl.lr_scheduler: input should be 'linear', 'cosine' or 'constant'"),
    ("data: [1, 2]\n", "data: input should be a valid dictionary"),
    ("- a list\n", "the top level must be a mapping"),
])
def test_bad_train_yaml_gets_one_line_naming_file_and_key_and_exit_code_2(tmp_path, text, expected):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "train.jsonl").write_text("")
    path = tmp_path / "train.yaml"
    path.write_text(text)
    done = train(path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {path}: ") and expected in done.stderr


def test_a_missing_train_yaml_is_one_line_too(tmp_path):
    done = train(tmp_path / "nowhere.yaml")
    assert done.returncode == 2 and done.stderr.strip() == \
        f"error: {tmp_path / 'nowhere.yaml'}: no such file; pass the path of a train.yaml (see examples/train/train.yaml)"


@pytest.mark.slow
def test_train_yaml_runs_dataset_sft_grpo_and_an_on_policy_round_into_an_adapter_the_hf_policy_loads(
        recorded_runs, tmp_path):
    suite = tmp_path / "suite.yaml"  # the training task, for the on-policy round's pipeline run
    suite.write_text(yaml.safe_dump({"name": "rl", "budget": 75, "tasks": [str(recorded_runs.parent / "tasks" /
                                                                                "diabetes")]}))
    spec = {"action_format": "structured", "output": "out", "seed": 0,
            "data": {"stores": [str(recorded_runs)], "eval_tasks": ["iris"]},
            "collect": {"suite": str(suite), "seeds": [0]},
            "executor": {"name": "local", "options": {"workers": 2}}, "timeout": 60,
            "sft": {"per_state": 1, "pool": 3, "max_steps": 2, "max_states": 1},
            "rl": {"max_steps": 1, "prompts_per_step": 1, "num_generations": 2, "max_completion_length": 32,
                   "iterations": 2}}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(spec))
    done = train(path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    summary = json.loads((out / "train.json").read_text())
    assert summary["train_states"] > 0 and summary["eval_states"] > 0
    assert (out / "dataset" / "train.jsonl").is_file() and (out / "dataset" / "hf").is_dir()
    assert (out / "sft" / "adapter" / "adapter_config.json").is_file()
    assert (out / "rl" / "adapter" / "adapter_config.json").is_file()
    assert (out / "adapter" / "adapter_config.json").is_file() and "adapter:" in done.stdout
    examples = [json.loads(line) for line in (out / "sft" / "examples.jsonl").read_text().splitlines()]
    assert examples and all(e["status"] == "ok" for e in examples)
    # sft.max_states: expert actions for the first state only; GRPO samples from every distinct training prompt
    assert len({e["step_id"] for e in examples}) == 1
    assert json.loads((out / "rl" / "grpo.json").read_text())["states"] > 1
    assert (out / "rl" / "metrics.jsonl").read_text().strip()

    # the on-policy round: the pipeline ran on the training task with the first GRPO adapter answering
    # plan_refinement, its steps joined the dataset, and GRPO went on from that adapter
    from core.store import RunStore
    from rl.dataset import load_steps

    store = RunStore(out / "iteration-1" / "experience" / "diabetes-hf-s0" / "run" / "runs.sqlite")
    calls = store.llm_calls()
    assert {c["role"] for c in calls} == {"plan_refinement"}  # asked (a 3-step adapter's replies rarely parse)
    own_run = {r["run_id"] for r in store.runs()}
    first = {s.step_id for s in load_steps(out / "dataset", "train")}
    grown = load_steps(out / "iteration-1" / "dataset", "train")
    # every earlier step stays; what is new comes from the policy's own run (a step it took exactly as the
    # heuristic once did is the same step, counted once)
    assert first <= {s.step_id for s in grown} and {s.task for s in grown} == {"diabetes"}
    assert {s.run_id for s in grown if s.step_id not in first} <= own_run
    assert {s.task for s in load_steps(out / "iteration-1" / "dataset", "eval")} == {"iris"}
    second = json.loads((out / "iteration-1" / "rl" / "grpo.json").read_text())
    assert second["start_adapter"] == str(out / "rl" / "adapter") and second["states"] == summary["train_states"]
    assert summary["iterations"] == 2

    # a second run finds every stage done and trains nothing again
    again = train(path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already trained" in again.stderr

    from plugins.policy_hf import HFPolicy

    policy = HFPolicy({"adapter": str(out / "adapter"), "action_format": "structured",
                       "max_tokens": {"plan_refinement": 24}})
    policy.load()
    assert type(policy.model).__name__ == "PeftModelForCausalLM"


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "examples" / "train").glob("*.yaml")))
def test_every_example_train_yaml_is_a_valid_train_file(name):
    from rl.config import load_train_file

    spec = load_train_file(ROOT / "examples" / "train" / name, need_data=False)

    assert spec.collect.suite.is_file() and spec.output.is_absolute()
