"""Suite hardness: is a task hard enough that searching beats defaults? For each task folder (task.yaml beside
private/answers.csv), the bench's own default LightGBM and its FLAML baseline with the same budget over several FLAML
seeds, both graded on the private test answers exactly as ``python -m core.bench`` grades them.

A task is kept as "hard" when FLAML's mean test score beats LightGBM's (in the metric's favourable direction) by more
than ``--margin`` times FLAML's seed spread (the sample standard deviation over the seeds): LightGBM's defaults are
deterministic, so FLAML's spread is the noise the difference has to clear.

Usage: python benchmarks/suite_hardness.py bench/tasks/NAME [more folders] [--budget 60] [--seeds 0,1,2] [--json F]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from core.bench import ANSWERS, flaml_baseline, grade, lightgbm_baseline
from core.dataprep import prepare_data
from core.loading import load_with_plugins


def hardness(folder: Path, *, budget: float, seeds: list[int], margin: float, work: Path) -> dict:
    """LightGBM's score, FLAML's score per seed, their mean and spread, and whether FLAML wins beyond the noise."""
    task, registry = load_with_plugins(folder / "task.yaml", work / folder.name)
    metric = registry.metrics[task.metric]
    data = prepare_data(task, maximize=metric.maximize, proba=metric.proba)
    ctx = data.context

    def graded(fit, seed: int) -> tuple[float, float]:
        started = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sub, _ = fit(task.model_copy(update={"seed": seed}), data, metric, budget)
            seconds = time.time() - started
            path = work / folder.name / f"{fit.__name__}-{seed}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            sub.to_csv(path, index=False)
            return grade(path, folder / ANSWERS, ctx, metric), seconds

    lgbm, lgbm_s = graded(lightgbm_baseline, task.seed)
    runs = [graded(flaml_baseline, s) for s in seeds]
    flaml = [score for score, _ in runs]
    mean = statistics.fmean(flaml)
    spread = statistics.stdev(flaml) if len(flaml) > 1 else 0.0
    gain = (mean - lgbm) if metric.maximize else (lgbm - mean)  # > 0: FLAML is better
    return {"task": folder.name, "metric": task.metric, "direction": metric.direction, "rows": ctx.n_train + ctx.n_valid,
            "lightgbm": lgbm, "lightgbm_seconds": round(lgbm_s, 1), "flaml": flaml, "flaml_mean": mean,
            "flaml_spread": spread, "flaml_seconds": [round(s, 1) for _, s in runs], "gain": gain,
            "hard": gain > margin * spread}


def table(rows: list[dict], margin: float) -> str:
    head = (f"| task | metric | rows | lightgbm | flaml per seed | flaml mean ± sd | gain | gain / sd | "
            f"hard (gain > {margin:g} sd) |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        arrow = "↑" if r["direction"] == "maximize" else "↓"
        ratio = f"{r['gain'] / r['flaml_spread']:.1f}" if r["flaml_spread"] > 0 else "∞" if r["gain"] > 0 else "—"
        lines.append(f"| {r['task']} | {r['metric']} {arrow} | {r['rows']} | {r['lightgbm']:.5g} | "
                     f"{', '.join(f'{s:.5g}' for s in r['flaml'])} | {r['flaml_mean']:.5g} ± {r['flaml_spread']:.2g} | "
                     f"{r['gain']:+.4g} | {ratio} | {'yes' if r['hard'] else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="task folders (task.yaml and private/answers.csv)")
    parser.add_argument("--budget", type=float, default=60, help="FLAML seconds per seed (default 60)")
    parser.add_argument("--seeds", default="0,1,2", help="FLAML seeds, comma-separated (default 0,1,2)")
    parser.add_argument("--margin", type=float, default=2.0, help="spreads FLAML must win by (default 2)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for folder in args.folders:
            rows.append(hardness(folder.resolve(), budget=args.budget, seeds=seeds, margin=args.margin,
                                 work=Path(tmp)))
            print(f"{folder.name}: lightgbm {rows[-1]['lightgbm']:.5g}, flaml {rows[-1]['flaml']}", file=sys.stderr,
                  flush=True)
            if args.json:  # after every task: a long run that stops half-way keeps what it measured
                args.json.write_text(json.dumps(rows, indent=1))
    print(f"FLAML {args.budget:g} s per seed, seeds {args.seeds}; scores on the private test answers\n")
    print(table(rows, args.margin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
