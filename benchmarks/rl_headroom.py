"""How much can a structured-format policy gain on held-out tasks? Every option of every state's menu is run, and the
mean reward on the held-out states is printed for fixed choices: the best option (an oracle), the heuristic's first
option, a random option, and the option whose mean reward on other tasks' states was best (a learned preference,
what a policy trained on those tasks could at most carry over when it does not read the state), with the same
figures leaving out each task of the dataset in turn.

    python benchmarks/rl_headroom.py examples/train/train.yaml [--states 24]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.train import load_spec, make_runner, step_dataset  # noqa: E402
from rl.dataset import sample_states  # noqa: E402
from rl.step import view_of  # noqa: E402

# How a learned preference tells options apart: the whole reply, or only the op and the kind of change it makes
# (its move, estimator or the setting it names), which carries over to tasks whose menus name other values.
KEYS = {"reply": lambda op: json.dumps(op, sort_keys=True),
        "kind": lambda op: str((op["op"], op["args"].get("move") or op["args"].get("estimator") or sorted(op["args"])))}


def option_rewards(steps, runner) -> list[dict]:
    """Per state, every option of its menu with the reward of running it: {"task", "options": [(op, reward)]}."""
    pairs = [(s, {"op": m["op"], "args": m["args"]}) for s in steps for m in view_of(s).menu()]
    results = runner.run([s for s, _ in pairs], [json.dumps(op) for _, op in pairs])
    states: dict[str, dict] = {}
    for (s, op), r in zip(pairs, results):
        states.setdefault(s.step_id, {"task": s.task, "options": []})["options"].append((op, r.reward))
    return list(states.values())


def preference(states: list[dict], key) -> dict:
    """Each option's mean reward over ``states`` (what a policy trained on them could learn to prefer)."""
    seen = defaultdict(list)
    for state in states:
        for op, reward in state["options"]:
            seen[key(op)].append(reward)
    return {k: statistics.fmean(v) for k, v in seen.items()}


def choose(state: dict, prefer: dict, key) -> float:
    """The reward of the option ``prefer`` rates best (an option it never saw rates neutral; ties: menu order)."""
    options = state["options"]
    best = max(range(len(options)), key=lambda i: (prefer.get(key(options[i][0]), 0.6), -i))
    return options[best][1]


def fixed_choices(states: list[dict], trained_on: list[dict]) -> dict[str, float]:
    """Mean reward over ``states`` of each fixed way to choose, the preferences learned from ``trained_on``."""
    mean = statistics.fmean
    row = {"oracle": mean(max(r for _, r in s["options"]) for s in states),
           "first option": mean(s["options"][0][1] for s in states),
           "random option": mean(mean(r for _, r in s["options"]) for s in states)}
    for name, key in KEYS.items():
        prefer = preference(trained_on, key)
        row[f"learned ({name})"] = mean(choose(s, prefer, key) for s in states)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_yaml")
    parser.add_argument("--states", type=int, default=24, help="held-out states (as the learning benchmark)")
    args = parser.parse_args()
    began = time.time()
    spec = load_spec(args)
    splits = step_dataset(spec)
    runner, _ = make_runner(spec)
    held_out = option_rewards(sample_states(splits["eval"], args.states), runner)
    train = option_rewards(sample_states(splits["train"], 10**6), runner)
    runs = sum(len(s["options"]) for s in held_out + train)
    print(f"{len(train)} training states, {len(held_out)} held-out states, {runs} option runs, "
          f"{time.time() - began:.0f} s\n")

    columns = ["oracle", "first option", "random option", *(f"learned ({k})" for k in KEYS)]
    print("## Held-out states, preferences learned from the training tasks\n")
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    row = fixed_choices(held_out, train)
    print("| " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")

    print("\n## Each task held out in turn, preferences learned from the other tasks\n")
    print("| task | states | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns))
    every = held_out + train
    rows = []
    for task in sorted({s["task"] for s in every}):
        mine = [s for s in every if s["task"] == task]
        row = fixed_choices(mine, [s for s in every if s["task"] != task])
        rows.append((len(mine), row))
        print(f"| {task} | {len(mine)} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    total = sum(n for n, _ in rows)
    print(f"| all (state-weighted) | {total} | "
          + " | ".join(f"{sum(n * r[c] for n, r in rows) / total:.3f}" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
