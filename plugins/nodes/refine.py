"""The refine node (inner loop): K plans for the target block, each implemented, spliced in, run and scored, with
the earlier plans and their scores shown to the planner; the best of ALL K attempts is kept if it improves."""

from loguru import logger

from ablation import AblationSummary, SpliceError, splice, split_blocks
from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from core.policy import AblationView, BlockInfo, PlanRecord
from graphs.evaluate import Job, ask, best_of, better, evaluate
from graphs.worklist import MAIN, head_of, stale_key, work_size


def implemented(rc, code: str, block, info: BlockInfo, plan: str, policy=None) -> str | None:
    """The script with ``plan`` implemented in ``block`` (by ``policy``, else through ``ask``), or None."""
    new_block = (policy.implement_plan(rc.ctx, code, info, plan) if policy is not None
                 else ask(rc, "implement_plan", code, info, plan))
    try:
        return splice(code, block, new_block) if new_block else None
    except SpliceError as exc:
        logger.debug(f"refine: splice failed for plan {plan!r}: {exc}")
        return None


def earlier_plans(state: dict, track: str, block: str) -> list[PlanRecord]:
    """The plans already tried on this block of this track, in earlier outer steps: the planner does not repeat
    them when the block is refined again."""
    return [PlanRecord(plan=p["plan"], score=p.get("score"), status=p["status"], seconds=p.get("seconds", 0.0))
            for p in state.get("plans", []) if p.get("block") == block and p.get("track", MAIN) == track]


def make_refine(rc):
    def refine(state: dict) -> dict:
        head, target = head_of(state), state["target"]
        track = state.get("track", MAIN)
        step = state.get("outer_step", 0) + 1
        code = head["code"]
        block = next((b for b in split_blocks(code) if b.key == target["key"]), None)
        if block is None:
            return {"outer_step": step, "refined": [target["key"]], "notes": [f"t{step}: target block vanished"],
                    "stale": [stale_key(track, target["key"], head)]}
        info = BlockInfo(key=block.key, kind=block.kind, source=block.source)
        record = state.get("ablation") or {}
        ablation = (AblationSummary.from_dict(record).view(record.get("text", "")) if record.get("rows") is not None
                    else AblationView(base_score=head.get("score"), maximize=rc.metric.maximize))
        history: list[PlanRecord] = earlier_plans(state, track, block.key)
        records, attempts = [], []
        want = work_size(state, "refine", "plans", rc.task.budget.plans)
        batch = max(1, min(rc.workers, want))  # plans proposed together run in parallel
        tried = 0
        while tried < want and rc.search_time_left() > 0:
            plans = ask(rc, "plan_refinement", code, info, ablation, history, min(batch, want - tried)) or []
            plans = [p for p in plans if p and p not in {h.plan for h in history}][: want - tried]
            if not plans:
                break
            jobs, planned = [], []
            # what the planner saw, stored with each attempt: a step-wise RL state (rl.dataset reads it back)
            seen = {"step": step, "block": block.key, "block_kind": block.kind, "base_score": head.get("score"),
                    "ablation": ablation.described(), "ablation_rows": [r.model_dump() for r in ablation.rows],
                    "history": [h.model_dump() for h in history]}
            for plan in plans:
                tried += 1
                new_code = implemented(rc, code, block, info, plan)
                if new_code is None and rc.fallback is not rc.policy:
                    # a plan nobody can implement would spend the slot: the heuristic plans and implements instead
                    own = rc.fallback.plan_refinement(rc.ctx, code, info, ablation, history, 1) or []
                    if own and own[0] != plan:
                        records.append({"step": step, "track": track, "block": block.key, "plan": plan,
                                        "score": None, "status": "not_implemented", "attempt": None})
                        plan = own[0]
                        new_code = implemented(rc, code, block, info, plan, policy=rc.fallback)
                if new_code is None or new_code == code:
                    history.append(PlanRecord(plan=plan, score=None, status="not_implemented"))
                    records.append({"step": step, "track": track, "block": block.key, "plan": plan, "score": None,
                                    "status": "not_implemented", "attempt": None})
                    continue
                jobs.append(Job(new_code, "refine", f"refine t{step} k{tried} {block.key}", plan, head.get("id"),
                                info={"refine_state": seen}))
                planned.append(plan)
            for plan, a in zip(planned, evaluate(rc, jobs)):
                attempts.append(a)
                history.append(PlanRecord(plan=plan, score=a.get("score"), status=a["status"],
                                          seconds=a.get("seconds", 0.0)))
                records.append({"step": step, "track": track, "block": block.key, "plan": plan,
                                "score": a.get("score"), "status": a["status"], "attempt": a.get("id"),
                                "seconds": a.get("seconds", 0.0)})
        winner = best_of(rc, attempts)
        improved = better(rc, winner, head)
        new_head = winner if improved else head
        logger.info(f"refine t{step} {track} {block.key}: {len(attempts)} attempts; "
                    f"{'improved to ' + format(new_head['score'], '.5g') if improved else 'no improvement'}")
        update = {"head": new_head, "tracks": {track: new_head}, "outer_step": step, "refined": [block.key],
                  "plans": records, "pool": [new_head] if improved else [],
                  # outer_k: the main track's steps (its score never falls); another track's steps are named apart
                  "stages": [{"stage": f"outer_{step}" if track == MAIN else f"track {track} t{step}",
                              "score": new_head["score"], "attempt": new_head.get("id"),
                              "label": new_head.get("label"), "block": block.key, "track": track}]}
        if improved and better(rc, new_head, state.get("best")):
            update["best"] = new_head
        if not improved:  # refined from this head without a gain: another block, or a new head, comes first
            update["stale"] = [stale_key(track, block.key, head)]
        return update
    return refine


@hookimpl
def register_nodes(register):
    register(NodeSpec("refine", make_refine, description="inner loop: K plans for the target block"))
