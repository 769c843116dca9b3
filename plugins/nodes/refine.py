"""The refine node (inner loop): K plans for the target block, each implemented, spliced in, run and scored, with
the earlier plans and their scores shown to the planner; the best of ALL K attempts is kept if it improves."""

from loguru import logger

from ablation import AblationSummary, SpliceError, splice, split_blocks
from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from core.policy import AblationView, BlockInfo, PlanRecord
from graphs.evaluate import Job, ask, best_of, better, evaluate


def implemented(rc, code: str, block, info: BlockInfo, plan: str, policy=None) -> str | None:
    """The script with ``plan`` implemented in ``block`` (by ``policy``, else through ``ask``), or None."""
    new_block = (policy.implement_plan(rc.ctx, code, info, plan) if policy is not None
                 else ask(rc, "implement_plan", code, info, plan))
    try:
        return splice(code, block, new_block) if new_block else None
    except SpliceError as exc:
        logger.debug(f"refine: splice failed for plan {plan!r}: {exc}")
        return None


def make_refine(rc):
    def refine(state: dict) -> dict:
        best, target = state["best"], state["target"]
        step = state.get("outer_step", 0) + 1
        code = best["code"]
        block = next((b for b in split_blocks(code) if b.key == target["key"]), None)
        if block is None:
            return {"outer_step": step, "refined": [target["key"]], "notes": [f"t{step}: target block vanished"]}
        info = BlockInfo(key=block.key, kind=block.kind, source=block.source)
        record = state.get("ablation") or {}
        ablation = (AblationSummary.from_dict(record).view(record.get("text", "")) if record.get("rows") is not None
                    else AblationView(base_score=best.get("score"), maximize=rc.metric.maximize))
        history: list[PlanRecord] = []
        records, attempts = [], []
        want = rc.task.budget.plans
        batch = max(1, min(rc.workers, want))  # plans proposed together run in parallel
        while len(history) < want and rc.search_time_left() > 0:
            plans = ask(rc, "plan_refinement", code, info, ablation, history,
                        min(batch, want - len(history))) or []
            plans = [p for p in plans if p and p not in {h.plan for h in history}][: want - len(history)]
            if not plans:
                break
            jobs, planned = [], []
            # what the planner saw, stored with each attempt: a step-wise RL state (rl.dataset reads it back)
            seen = {"step": step, "block": block.key, "block_kind": block.kind, "base_score": best.get("score"),
                    "ablation": ablation.described(), "ablation_rows": [r.model_dump() for r in ablation.rows],
                    "history": [h.model_dump() for h in history]}
            for plan in plans:
                new_code = implemented(rc, code, block, info, plan)
                if new_code is None and rc.fallback is not rc.policy:
                    # a plan nobody can implement would spend the slot: the heuristic plans and implements instead
                    own = rc.fallback.plan_refinement(rc.ctx, code, info, ablation, history, 1) or []
                    if own and own[0] != plan:
                        records.append({"step": step, "block": block.key, "plan": plan, "score": None,
                                        "status": "not_implemented", "attempt": None})
                        plan = own[0]
                        new_code = implemented(rc, code, block, info, plan, policy=rc.fallback)
                if new_code is None or new_code == code:
                    history.append(PlanRecord(plan=plan, score=None, status="not_implemented"))
                    records.append({"step": step, "block": block.key, "plan": plan, "score": None,
                                    "status": "not_implemented", "attempt": None})
                    continue
                k = len(history) + len(jobs) + 1
                jobs.append(Job(new_code, "refine", f"refine t{step} k{k} {block.key}", plan, best.get("id"),
                                info={"refine_state": seen}))
                planned.append(plan)
            for plan, a in zip(planned, evaluate(rc, jobs)):
                attempts.append(a)
                history.append(PlanRecord(plan=plan, score=a.get("score"), status=a["status"],
                                          seconds=a.get("seconds", 0.0)))
                records.append({"step": step, "block": block.key, "plan": plan, "score": a.get("score"),
                                "status": a["status"], "attempt": a.get("id")})
        winner = best_of(rc, attempts)
        improved = better(rc, winner, best)
        new_best = winner if improved else best
        logger.info(f"refine t{step} {block.key}: {len(attempts)} attempts; "
                    f"{'improved to ' + format(new_best['score'], '.5g') if improved else 'no improvement'}")
        return {"best": new_best, "outer_step": step, "refined": [block.key], "plans": records,
                "pool": [new_best] if improved else [],
                "stages": [{"stage": f"outer_{step}", "score": new_best["score"], "attempt": new_best.get("id"),
                            "label": new_best.get("label"), "block": block.key}]}
    return refine


@hookimpl
def register_nodes(register):
    register(NodeSpec("refine", make_refine, description="inner loop: K plans for the target block"))
