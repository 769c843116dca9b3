"""Does step-wise RL teach the policy? Mean reward on states of tasks left out of training, for the base model, after
SFT and after GRPO (one run of train.yaml's chain), then the full pipeline on one held-out task with the base model
and with the trained adapter.

    python benchmarks/rl_learning.py examples/train/train.yaml [--states 24] [--pipeline-task diamonds]

Needs the experience `python -m core.train collect train.yaml` records; trains what train.yaml's output lacks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.train import load_spec, make_runner, step_dataset  # noqa: E402
from rl.dataset import sample_states  # noqa: E402
from rl.evaluate import evaluate, hf_policy  # noqa: E402


def pipeline_score(task_folder: Path, out: Path, policy: dict, budget: float) -> dict:
    """The full pipeline on one task with ``policy``; its final validation score and wall seconds."""
    from rl.collect import task_yaml_copy

    task_yaml = task_yaml_copy(task_folder, out, policy, seed=0)
    began = time.time()
    done = subprocess.run([sys.executable, "-m", "core.run", str(task_yaml), "--budget", str(budget)],
                          capture_output=True, text=True, cwd=ROOT)
    result = out / "run" / "result.json"
    final = json.loads(result.read_text()).get("final", {}) if result.is_file() else {}
    return {"exit": done.returncode, "score": final.get("score"), "seconds": round(time.time() - began, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_yaml")
    parser.add_argument("--states", type=int, default=24, help="held-out states to score each policy on")
    parser.add_argument("--pipeline-task", default=None, help="held-out bench task for the full-pipeline comparison")
    parser.add_argument("--pipeline-budget", type=float, default=240)
    args = parser.parse_args()
    began = time.time()
    spec = load_spec(args)
    splits = step_dataset(spec)
    held_out = sample_states(splits["eval"], args.states)
    print(f"held-out tasks: {sorted({s.task for s in splits['eval']})}; {len(held_out)} states scored; "
          f"{len(splits['train'])} training steps from {sorted({s.task for s in splits['train']})}")

    trained = time.time()
    done = subprocess.run([sys.executable, "-m", "core.train", args.train_yaml], cwd=ROOT)
    if done.returncode != 0:
        return done.returncode
    train_seconds = time.time() - trained
    runner, _ = make_runner(spec)
    base = spec.base_model
    rows = []
    for label, adapter in (("base", None), ("SFT", spec.output / "sft" / "adapter"),
                           ("SFT+GRPO", spec.output / "rl" / "adapter")):
        if adapter is not None and not adapter.is_dir():
            continue
        result = evaluate(hf_policy(base, adapter, spec.action_format), held_out, runner, label)
        rows.append(result.summary())
        print(json.dumps(rows[-1]), flush=True)
    metrics = [json.loads(line) for line in (spec.output / "rl" / "metrics.jsonl").read_text().splitlines()
               if line.strip()] if (spec.output / "rl" / "metrics.jsonl").is_file() else []
    grpo_steps = max((m.get("step", 0) for m in metrics), default=0)

    print(f"\n## Mean reward on {len(held_out)} held-out states ({spec.action_format} format)\n")
    print("| policy | mean reward | malformed | ran ok | improved | generation s | run s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['policy']} | {r['mean_reward']:.3f} | {r['malformed']:.0%} | {r['ok']:.0%} | {r['improved']:.0%} "
              f"| {r['generate_seconds']} | {r['run_seconds']} |")
    by = {r["policy"]: r["mean_reward"] for r in rows}
    if {"base", "SFT"} <= set(by):
        print(f"\nSFT − base: {by['SFT'] - by['base']:+.3f} (target > 0)")
    if {"SFT", "SFT+GRPO"} <= set(by):
        print(f"GRPO − SFT: {by['SFT+GRPO'] - by['SFT']:+.3f} after {grpo_steps} GRPO steps (target ≥ +0.05)")
    print(f"training (dataset + SFT + GRPO, or reused): {train_seconds / 60:.1f} min; whole benchmark so far: "
          f"{(time.time() - began) / 60:.1f} min")

    if args.pipeline_task:
        from core.bench import load_suite

        _, tasks, _ = load_suite(spec.collect.suite, only=[args.pipeline_task])
        out = spec.output / "bench-pipeline"
        print(f"\n## Full pipeline on held-out task {args.pipeline_task} ({args.pipeline_budget:g} s budget)\n")
        print("| policy | final validation score | exit | wall s |")
        print("|---|---|---|---|")
        for label, adapter in (("base", None), ("trained adapter", spec.output / "adapter")):
            # the model plans the refinements (the role it was trained for); the heuristic writes the drafts, as it
            # did in the runs the experience came from, so the two runs differ only in the refinement policy
            options = {"action_format": spec.action_format, "answer_roles": ["plan_refinement"],
                       "max_tokens": {"plan_refinement": 64}}
            if base is not None:
                options["model"] = str(base)
            if adapter is not None:
                options["adapter"] = str(adapter)
            folder = out / label.replace(" ", "-")
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            r = pipeline_score(tasks[0].folder, folder, {"name": "hf", "options": options}, args.pipeline_budget)
            print(f"| {label} | {r['score']} | {r['exit']} | {r['seconds']} |", flush=True)
    print(f"\ntotal: {(time.time() - began) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
