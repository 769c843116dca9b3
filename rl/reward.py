"""The step reward: one scalar in [0, 1] from the ML feedback of one refinement action (format, run status, metric
gain, how far a failing script got). The formula, its constants and how it differs from ML-Agent and from Yang et
al.'s RL-for-MLE-agents are documented in docs/rl.md; every case has a unit test in tests/test_rl_reward.py."""

from __future__ import annotations

import math
from dataclasses import dataclass

# A failing script earns up to this much, in proportion to the stages it finished (load, preprocess, model, train,
# predict); a valid run earns at least this much, so a script that runs always beats one that fails.
PARTIAL_CREDIT = 0.2
# A valid run with zero gain earns this: the sigmoid's midpoint above the floor.
NEUTRAL = PARTIAL_CREDIT + (1 - PARTIAL_CREDIT) * 0.5
# A reply the pipeline would refuse (it changes nothing, or repeats an action already tried on the block) earns what a
# script that failed right after loading its data earns: a do-nothing policy, which always has such a reply at hand,
# must not out-earn one that tries real changes and sometimes loses (ML-Agent's neutral 0.5 here was the best
# constant policy: 0.600 against the heuristic's 0.577).
REFUSED = PARTIAL_CREDIT / 5
# How many "typical gains" of the task move the sigmoid from 0.5 to σ(1) ≈ 0.73.
GAIN_SLOPE = 1.0
STAGES = ("load_data", "preprocess", "model", "train", "predict")

# Statuses of actions that were not run because the pipeline would refuse them.
REFUSED_STATUSES = ("no_op", "repeat")


@dataclass(frozen=True)
class Outcome:
    """What happened to one action. ``status`` is a core.executor.Status value, or ``malformed`` (the reply was not
    an action for this block: unparsable, or an op or args that do not fit it), ``no_op`` (it changed nothing) or
    ``repeat`` (an action already in the state's tried list). A timeout or running out of memory is a failure: a
    slow action must not earn more than a fast one that loses a little."""

    status: str
    score: float | None = None
    prev_score: float | None = None
    maximize: bool = True
    scale: float = 1.0  # the task's typical |gain| (rl.dataset.task_scales)
    stages: tuple[str, ...] = ()  # the block kinds an instrumented run reported finishing


def reward(o: Outcome) -> float:
    """The reward of one outcome (see the module docstring)."""
    if o.status == "malformed":
        return 0.0
    if o.status in REFUSED_STATUSES:
        return REFUSED
    if o.status == "ok" and o.score is not None and o.prev_score is not None and math.isfinite(o.score):
        return PARTIAL_CREDIT + (1 - PARTIAL_CREDIT) * sigmoid(GAIN_SLOPE * signed_gain(o) / max(o.scale, 1e-12))
    reached = sum(1 for s in STAGES if s in o.stages)
    return PARTIAL_CREDIT * reached / len(STAGES)


def signed_gain(o: Outcome) -> float:
    """score - prev_score, signed so that positive is better."""
    gain = o.score - o.prev_score
    return gain if o.maximize else -gain


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
