"""The run state: plain, checkpointable data (scores, short texts, script sources), with reducers where several
nodes, or parallel branches, add to the same key."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def merge_dicts(left: dict | None, right: dict | None) -> dict:
    """Reducer: later entries win key by key (parallel drafts each add their own key)."""
    return {**(left or {}), **(right or {})}


class Attempt(TypedDict, total=False):
    """One scored script: what the run store holds, minus the logs."""

    id: int | None  # attempt_id in the run store
    node: str
    code: str
    plan: str
    parent: int | None
    status: str  # core.executor.Status value
    score: float | None  # the framework's score of val_predictions.csv (the search's rows); None unless "ok"
    holdout: float | None  # its score on the selection rows, which only the final choice reads
    reported: float | None  # what the script printed, as a cross-check
    message: str
    workdir: str
    seconds: float  # summed over its runs (one per fold when the search cross-validates)
    folds: int  # how many runs those were
    startup: float  # of those seconds, what one process running every fold paid once (imports): see final_estimate
    label: str  # a short name for reports: the model card, "merge 2", "refine t1 k3", ...
    members: list  # for an ensemble: the attempts it combines (rerun on all rows before the submission)


class RunState(TypedDict, total=False):
    task: str  # the task.yaml of this run, for a graph that serves any task (graphs.build.build_graph(contexts=))
    out: str  # its output folder, when not task.yaml's
    cards: list[dict]  # model cards (core.cards.ModelCard dumps)
    drafts: Annotated[dict[str, Attempt], merge_dicts]  # card index -> its (possibly debugged) solution
    debug_round: int
    best: Attempt  # the solution every later stage starts from
    pool: Annotated[list[Attempt], operator.add]  # finished solutions the ensemble may combine
    stages: Annotated[list[dict], operator.add]  # {"stage", "score", "attempt"} in order: initial, merged, outer_t, ...
    outer_step: int
    ablation: dict  # the current step's ablation.AblationSummary.to_dict() plus its text summary
    ablations: Annotated[list[dict], operator.add]
    target: dict | None  # the block to refine: key, kind, source
    refined: Annotated[list[str], operator.add]  # block keys refined in earlier outer steps
    plans: Annotated[list[dict], operator.add]  # every refinement plan tried: step, block, plan, score, status
    ensembles: Annotated[list[dict], operator.add]  # every ensemble plan tried
    ensembled: list  # ids of the solutions the latest ensemble rounds combined (graphs.worklist.ensemble_members)
    phase: str  # "first" (MLE-STAR's pass, sized by the task's counts) until the scheduler runs, then "anytime"
    head: Attempt  # the solution the outer loop works on: the current track's best single script
    track: str  # the track being refined ("main": the merged solution; a later draft starts its own)
    tracks: Annotated[dict[str, Attempt], merge_dicts]  # track -> its head
    stale: Annotated[list[str], operator.add]  # "track|block|head id": refined from that head without a gain
    work: dict | None  # the work item running now (core.policy.WorkItem dump, plus when it started)
    worklog: Annotated[list[dict], operator.add]  # finished work items: item, gain, seconds, estimate
    finalists: Annotated[list[Attempt], operator.add]  # every ensemble item's best attempt: a candidate at the end
    selection: dict  # the final choice: candidates with search and holdout scores, the one chosen
    stopped: dict  # why the search ended: {"reason": "budget" | "exhausted", "elapsed": s, "search_left": s}
    checks: dict
    final: dict
    timings: Annotated[list[dict], operator.add]  # {"node", "seconds"} per node call
    notes: Annotated[list[str], operator.add]  # what a person should know (fallbacks, skipped stages)


def attempt_label(a: Any) -> str:
    return (a or {}).get("label") or (a or {}).get("node", "?")
