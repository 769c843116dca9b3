"""Reference policies a learned one is judged against, on the same states: doing nothing, a random menu option, the
heuristic's first option, the best fixed preference learned from training states, and the oracle (the best option
of each state). Each gives one reward per state, greedy (one reply) or best of K (K replies, the best one counts:
how the pipeline uses a policy that proposes K plans per block)."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import comb

from rl.dataset import Step
from rl.step import StepRunner, view_of

# The reply that leaves each kind of block as it is (what a do-nothing policy sends).
DO_NOTHING = {"preprocess": {"op": "set_preprocess", "args": {}}, "train": {"op": "set_train", "args": {}},
              "model": {"op": "set_params", "args": {"params": {}}}}

# How a learned preference tells options apart: the whole reply, or only the op and the kind of change it makes
# (its move, estimator or the setting it names), which carries over to tasks whose menus name other values.
PREFERENCE_KEYS: dict[str, Callable[[dict], str]] = {
    "reply": lambda op: json.dumps(op, sort_keys=True),
    "kind": lambda op: str((op["op"], op["args"].get("move") or op["args"].get("estimator") or sorted(op["args"])))}


@dataclass
class StateOptions:
    """One state's menu, in the heuristic's order, with the reward each option earned, and the reward of doing
    nothing on it."""

    step_id: str
    task: str
    options: list[tuple[dict, float]]
    nothing: float


def do_nothing_reply(step: Step) -> str:
    return json.dumps(DO_NOTHING.get(step.block_kind, {"op": "set_params", "args": {"params": {}}}))


def option_rewards(steps: Sequence[Step], runner: StepRunner) -> list[StateOptions]:
    """Every option of every state's menu, and the do-nothing reply, run and rewarded in one batch (states without a
    menu are left out: no structured policy can act on them)."""
    menus = [(s, [{"op": m["op"], "args": m["args"]} for m in view_of(s).menu()]) for s in steps]
    menus = [(s, menu) for s, menu in menus if menu]
    pairs = [(s, json.dumps(op)) for s, menu in menus for op in menu] + [(s, do_nothing_reply(s)) for s, _ in menus]
    rewards = iter(r.reward for r in runner.run([s for s, _ in pairs], [reply for _, reply in pairs]))
    options = [[(op, next(rewards)) for op in menu] for _, menu in menus]
    return [StateOptions(s.step_id, s.task, opts, next(rewards)) for (s, _), opts in zip(menus, options)]


def best_of(rewards: Sequence[float], k: int) -> float:
    """The best of the first ``k`` rewards (the pipeline runs a policy's first k plans and keeps the best)."""
    return max(rewards[:k]) if rewards else 0.0


def expected_best_of_random(rewards: Sequence[float], k: int) -> float:
    """The expected best reward of ``k`` options drawn at random without replacement, exactly: the i-th smallest of
    n is the best of a draw in C(i, k-1) of the C(n, k) draws."""
    ordered, k = sorted(rewards), min(k, len(rewards))
    return sum(r * comb(i, k - 1) for i, r in enumerate(ordered)) / comb(len(ordered), k)


def preference(states: Sequence[StateOptions], key: Callable[[dict], str]) -> dict[str, float]:
    """Each option's mean reward over ``states`` (what a policy trained on them could learn to prefer)."""
    seen = defaultdict(list)
    for state in states:
        for op, reward in state.options:
            seen[key(op)].append(reward)
    return {k: statistics.fmean(v) for k, v in seen.items()}


def preferred_order(state: StateOptions, prefer: dict[str, float], key: Callable[[dict], str],
                    unseen: float) -> list[float]:
    """The state's option rewards, the preferred first (an option never seen rates ``unseen``; ties: menu order)."""
    order = sorted(range(len(state.options)), key=lambda i: (-prefer.get(key(state.options[i][0]), unseen), i))
    return [state.options[i][1] for i in order]


def reference_rewards(states: Sequence[StateOptions], trained_on: Sequence[StateOptions],
                      k: int = 1) -> dict[str, list[float]]:
    """Per reference policy, its reward on each of ``states`` (best of ``k`` replies); the fixed preference is
    learned from ``trained_on`` without looking at ``states``."""
    rows = {"do nothing": [s.nothing for s in states],
            "random option": [expected_best_of_random([r for _, r in s.options], k) for s in states],
            "heuristic first": [best_of([r for _, r in s.options], k) for s in states]}
    rows["best fixed preference"] = fixed_preference(states, trained_on, k)[1]
    rows["oracle"] = [max(r for _, r in s.options) for s in states]
    return rows


def fixed_preference(states: Sequence[StateOptions], trained_on: Sequence[StateOptions],
                     k: int = 1) -> tuple[str, list[float]]:
    """(the key, its rewards on ``states``) of the fixed preference learned from ``trained_on``. The key is chosen
    the way a held-out figure must be, on the training states alone: each training task held out in turn, the
    preference learned from the others (in-sample with a single training task, where the finer key always wins)."""
    def rewards(key, on: Sequence[StateOptions], learned_from: Sequence[StateOptions]) -> list[float]:
        prefer = preference(learned_from, key)
        unseen = statistics.fmean(prefer.values()) if prefer else 0.0
        return [best_of(preferred_order(s, prefer, key, unseen), k) for s in on]

    tasks = sorted({s.task for s in trained_on})

    def nested(name: str) -> float:
        key = PREFERENCE_KEYS[name]
        if len(tasks) < 2:
            return statistics.fmean(rewards(key, trained_on, trained_on) or [0.0])
        return statistics.fmean(r for t in tasks for r in rewards(
            key, [s for s in trained_on if s.task == t], [s for s in trained_on if s.task != t]))

    name = max(PREFERENCE_KEYS, key=nested)
    return name, rewards(PREFERENCE_KEYS[name], states, trained_on)
