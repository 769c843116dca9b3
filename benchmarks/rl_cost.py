"""What experience costs: RL samples per hour from whole-episode rollouts (one full pipeline run = one sample, its
final score the reward) against step-wise rollouts (one refinement action from a recorded state = one sample), on
the same tasks, with the same policy (SmolLM2 in the structured format, with ``--adapter``: an SFT adapter, so
that its actions are well formed and run), measured in one run.

    python benchmarks/rl_cost.py --adapter out/train/sft/adapter [--tasks penguins,diabetes] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.bench import load_suite  # noqa: E402
from core.loading import installed_registry  # noqa: E402
from rl.dataset import build_dataset  # noqa: E402
from rl.evaluate import evaluate, hf_policy  # noqa: E402
from rl.step import StepRunner  # noqa: E402

EPISODE_BUDGET = {"models": 2, "plans": 2, "outer_steps": 2, "ensemble_rounds": 1, "debug_retries": 1,
                  "run_timeout": 60, "total_seconds": 1800}
POLICY = {"name": "hf", "options": {"action_format": "structured", "answer_roles": ["plan_refinement"],
                                    "max_tokens": {"plan_refinement": 64}}}


def episode(task_folder: Path, out: Path, policy: dict) -> float:
    """Seconds of one whole pipeline episode (drafts, merge, ablation, refinement, ensemble, submission)."""
    import subprocess

    import yaml

    from rl.collect import task_yaml_copy

    task_yaml = task_yaml_copy(task_folder, out, policy, seed=0)
    raw = yaml.safe_load(task_yaml.read_text())
    raw["budget"] = EPISODE_BUDGET
    task_yaml.write_text(yaml.safe_dump(raw))
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "core.run", str(task_yaml)], capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode not in (0, 1):
        raise SystemExit(f"episode on {task_folder.name} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "bench" / "suite.yaml"))
    parser.add_argument("--tasks", default="penguins,diabetes")
    parser.add_argument("--steps", type=int, default=8, help="step-wise samples per task")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench-rl-cost"))
    parser.add_argument("--adapter", default=None, help="a LoRA adapter for SmolLM2 (both kinds of rollout use it)")
    args = parser.parse_args()
    adapter = str(Path(args.adapter).resolve()) if args.adapter else None
    policy = {**POLICY, "options": {**POLICY["options"], **({"adapter": adapter} if adapter else {})}}
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    _, tasks, _ = load_suite(args.suite, only=args.tasks.split(","))
    registry = installed_registry()
    rows = []
    for task in tasks:
        seconds = episode(task.folder, out / task.name / "episode", policy)
        # states of the same task, from the episode just run; replayed with a fresh executor (no cache hits)
        steps = build_dataset([out / task.name / "episode" / "run"], eval_tasks=[])["train"][: args.steps]
        executor = registry.executors["local"]({"workers": 2}, out_dir=out / task.name / "steps")
        runner = StepRunner(executor, registry, "structured")
        began = time.perf_counter()
        result = evaluate(hf_policy(None, adapter, "structured"), steps, runner, "policy")
        step_seconds = (time.perf_counter() - began) / max(1, len(steps))
        rows.append({"task": task.name, "episode_seconds": round(seconds, 1), "steps": len(steps),
                     "step_seconds": round(step_seconds, 2),
                     "step_generate_seconds": round(result.generate_seconds / max(1, len(steps)), 2),
                     "step_run_seconds": round(statistics.fmean(r.seconds for r in result.results), 2)
                     if result.results else None,
                     "step_statuses": {s: sum(r.status == s for r in result.results)
                                       for s in sorted({r.status for r in result.results})}})
        print(json.dumps(rows[-1]), flush=True)

    print(f"\npolicy: SmolLM2-135M structured{' + ' + adapter if adapter else ' (no adapter)'}; step-wise samples "
          f"replay states of the same tasks with a fresh executor (no cache hits)\n")
    print("| task | whole episode: s/sample | samples/hour | step-wise: s/sample (generate + run) | samples/hour "
          "| ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        episode_rate = 3600 / r["episode_seconds"]
        step_rate = 3600 / r["step_seconds"] if r["step_seconds"] else float("nan")
        print(f"| {r['task']} | {r['episode_seconds']} | {episode_rate:.1f} | {r['step_seconds']} "
              f"({r['step_generate_seconds']} + {r['step_run_seconds']}) | {step_rate:.0f} | "
              f"{step_rate / episode_rate:.0f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
