"""Does the trained adapter make the pipeline better where the order of work matters? On each task, for each
training seed, the pipeline runs twice with a short budget: with the heuristic alone, and with the adapter that
``benchmarks/rl_eval.py`` trained without that task (its fold, that seed) answering ``plan_refinement``. Printed per
task: the final test score of each (mean over seeds), and when the adapter's run first reached the heuristic run's
final validation score.

    python benchmarks/rl_pipeline.py examples/train/train.yaml [--eval-dir out/train/eval] [--budget 60]
        [--seeds 0,1,2] [--tasks diabetes,biopsy] [--out out/rl-pipeline]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.bench import bench_task, load_suite  # noqa: E402
from core.files import write_atomic  # noqa: E402
from core.local_llm import smollm2_dir  # noqa: E402
from core.store import RunStore  # noqa: E402
from core.train import load_spec  # noqa: E402
from graphs.report_html import best_so_far  # noqa: E402


def reached_at(row: dict, target: float | None) -> float | None:
    """Seconds into the agent's run at which its best validation score so far first matched ``target``."""
    if target is None or not row["agent"].get("run_id"):
        return None
    store = RunStore(Path(row["agent"]["submission"]).parent / "runs.sqlite")
    try:
        run = next(r for r in store.runs() if r["run_id"] == row["agent"]["run_id"])
        curve = best_so_far(store.attempts(run_id=run["run_id"]), run["started_at"], row["direction"] == "maximize")
    finally:
        store.close()
    maximize = row["direction"] == "maximize"
    return next((t for t, score in curve if (score >= target if maximize else score <= target)), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_yaml")
    parser.add_argument("--eval-dir", default=None, help="rl_eval.py's output (default: <train output>/eval)")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tasks", default=None, help="comma-separated (default: every task rl_eval held out)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    spec = load_spec(args)
    eval_dir = Path(args.eval_dir) if args.eval_dir else spec.output / "eval"
    folds = json.loads((eval_dir / "per_state.json").read_text())["folds"]
    fold_of = {task: i for i, fold in enumerate(folds) for task in fold}
    tasks = args.tasks.split(",") if args.tasks else sorted(fold_of)
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out) if args.out else spec.output / "pipeline"
    _, bench_tasks, _ = load_suite(spec.collect.suite, budget=args.budget, only=tasks)
    base = str(spec.base_model or smollm2_dir())
    rows = []
    for bt in bench_tasks:
        for seed in seeds:
            adapter = eval_dir / f"fold-{fold_of[bt.name]}" / f"seed-{seed}" / "adapter"
            policy = {"name": "hf", "options": {"model": base, "adapter": str(adapter),
                                                "action_format": spec.action_format,
                                                "answer_roles": ["plan_refinement"]}}
            heuristic = bench_task(bt, out / f"heuristic-s{seed}", baselines=[], seed=seed)
            adapted = bench_task(bt, out / f"adapter-s{seed}", baselines=[], seed=seed, policy=policy)
            target = heuristic["agent"]["validation_score"]
            rows.append({"task": bt.name, "seed": seed, "heuristic": heuristic["agent"]["score"],
                         "adapter": adapted["agent"]["score"], "maximize": heuristic["direction"] == "maximize",
                         "heuristic_reached": reached_at(heuristic, target),
                         "adapter_reached": reached_at(adapted, target)})
            write_atomic(out / "rows.json", json.dumps(rows, indent=1))
            print(json.dumps(rows[-1]), flush=True)

    print("\n| task | heuristic test | adapter test | adapter ≥ heuristic | heuristic reached its final at | "
          "adapter reached it at |\n|---|---|---|---|---|---|")
    wins, speedups = 0, []
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        h = statistics.fmean(r["heuristic"] for r in mine if r["heuristic"] is not None)
        a = statistics.fmean(r["adapter"] for r in mine if r["adapter"] is not None)
        better = a >= h if mine[0]["maximize"] else a <= h
        wins += better
        h_t = [r["heuristic_reached"] for r in mine if r["heuristic_reached"] is not None]
        a_t = [r["adapter_reached"] for r in mine]
        reached = [t for t in a_t if t is not None]
        speedups += [r["heuristic_reached"] / r["adapter_reached"] for r in mine
                     if r["adapter_reached"] and r["heuristic_reached"]]
        print(f"| {task} | {h:.5g} | {a:.5g} | {'yes' if better else 'no'} | "
              f"{statistics.fmean(h_t):.0f} s | " + (f"{statistics.fmean(reached):.0f} s" if reached else "never")
              + f" ({len(reached)}/{len(a_t)} seeds) |")
    print(f"\nadapter ≥ heuristic on {wins}/{len(tasks)} tasks; reaching the heuristic's final score: "
          + (f"{statistics.fmean(speedups):.2f}× as fast on average ({len(speedups)} runs that reached it)"
             if speedups else "never reached"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
