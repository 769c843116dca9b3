"""The heuristic's answer to the scheduler: an item's expected gain and seconds, from what items of its kind gained
and cost earlier in the run (shrunk towards a prior, so one lucky or unlucky item does not decide), with priors
that favour refining the best track, then new drafts for diversity, then ensembles over new members."""

from __future__ import annotations

from core.policy import Estimate, TaskContext, WorkItem, WorkOutcome

UNIT = 0.005  # the prior gain of an item, as a share of the score's size: a half-percent move
PRIOR = {"refine": 1.0, "draft": 0.6, "ensemble": 0.8}
SIDE_TRACK = 0.5  # refining a track that is not the best one helps only through the ensemble
DRAFT_DECAY = 0.7  # every further model drafted is less likely to add anything new


def estimate(ctx: TaskContext, item: WorkItem, done: list[WorkOutcome]) -> Estimate:
    same = [o for o in done if o.item.kind == item.kind and (item.kind != "refine" or o.item.track == item.track)]
    kind = [o for o in done if o.item.kind == item.kind]
    score = item.facts.get("head_score", item.facts.get("best_score", 1.0)) or 1.0
    unit = max(abs(score) * UNIT, 1e-9)
    prior = unit * PRIOR[item.kind]
    history = sum(o.gain * _size(item) / _size(o.item) for o in same)
    if item.kind == "refine":
        if kind:  # what refinement gained anywhere in this run says more than the fixed prior
            prior = (prior + sum(o.gain for o in kind)) / (1 + len(kind))
        if not item.facts.get("is_best", True):
            # a side track's gains lift its own head, not the best: worth it only through the ensemble (its prior
            # and its history both cut, so a weak draft's climb does not draw all the time)
            prior, history = prior * SIDE_TRACK, history * SIDE_TRACK
    elif item.kind == "draft":
        prior *= DRAFT_DECAY ** max(0, item.facts.get("drafts", 0) - 1)
    gain = (prior + history) / (1 + len(same))
    return Estimate(gain=gain, seconds=_seconds(item, same or kind))


def _size(item: WorkItem) -> float:
    """How much work the item does: its plans (refine) or rounds (ensemble); gains and seconds scale with it."""
    key = {"refine": "plans", "ensemble": "rounds"}.get(item.kind)
    return float(max(1, item.facts.get(key, 1))) if key else 1.0


def _seconds(item: WorkItem, seen: list[WorkOutcome]) -> float:
    f = item.facts
    if item.kind == "refine":
        runs = f.get("plans", 2) + (0 if f.get("ablated") else f.get("blocks_left", 3) + 1)
        prior = f.get("head_seconds", 1.0) * runs / max(1, min(f.get("workers", 1), f.get("plans", 1))) + 1.0
    elif item.kind == "draft":
        prior = f.get("draft_seconds", 10.0)
    else:
        prior = 2.0 * f.get("rounds", 1)
    recent = [o.seconds * _size(item) / _size(o.item) for o in seen[-3:]]
    return (prior + sum(recent)) / (1 + len(recent))
