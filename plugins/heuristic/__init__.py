"""The offline ``heuristic`` policy: real, runnable scripts from block specs, and rule-based plans, repairs and
ensembles over them; no model, no network, same output for the same input."""

from __future__ import annotations

from core.hookspecs import hookimpl
from plugins.heuristic.policy import HeuristicPolicy


def make_heuristic_policy(options: dict, *, task=None, **_unused) -> HeuristicPolicy:
    """Options: ``seed`` (int, default: the task's seed) is the random_state of every script it writes."""
    return HeuristicPolicy(options, task=task)


@hookimpl
def register_policies(register):
    register("heuristic", make_heuristic_policy)
