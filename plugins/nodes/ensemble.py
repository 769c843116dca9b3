"""The ensemble node: R rounds of ensembling plans over the best distinct solutions' stored predictions."""

from loguru import logger

from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from core.policy import CandidateInfo, PlanRecord
from graphs.ensembling import candidate_names, ensemble_input, members_for
from graphs.evaluate import Job, ask, best_of, better, evaluate
from graphs.worklist import ensemble_members, work_size


def make_ensemble(rc):
    def ensemble(state: dict) -> dict:
        rounds = work_size(state, "ensemble", "rounds", rc.task.budget.ensemble_rounds)
        members = members_for(rc, state)
        if rounds == 0 or len(members) < 2 or rc.search_time_left() <= 0:
            why = "no rounds" if rounds == 0 else ("fewer than 2 solutions" if len(members) < 2 else "no time left")
            logger.info(f"ensemble: skipped ({why})")
            return {"notes": [f"ensemble skipped: {why}"], "ensembled": ensemble_members(state)}
        input_dir = ensemble_input(rc.data.search_dir, members, rc.task.output / "data" / "ensemble_search")
        cands = [CandidateInfo(name=n, score=m["score"], model=m.get("label", ""))
                 for n, m in zip(candidate_names(members), members)]
        history: list[PlanRecord] = []
        records, attempts = [], []
        done = len(state.get("ensembles", []))  # rounds of earlier ensemble items: numbering goes on
        for r in range(rounds):
            if rc.search_time_left() <= 0:
                break
            plan = ask(rc, "plan_ensemble", cands, history)
            code = ask(rc, "implement_ensemble", cands, plan) if plan else None
            if not code and rc.fallback is not rc.policy:  # a plan nobody can implement: the heuristic plans instead
                plan = rc.fallback.plan_ensemble(rc.ctx, cands, history)
                code = rc.fallback.implement_ensemble(rc.ctx, cands, plan) if plan else None
            if not code:
                break
            [a] = evaluate(rc, [Job(code, "ensemble", f"ensemble r{done + r + 1}", plan)], input_dir=input_dir)
            a["members"] = members
            attempts.append(a)
            history.append(PlanRecord(plan=plan, score=a.get("score"), status=a["status"], seconds=a.get("seconds", 0)))
            records.append({"round": done + r + 1, "plan": plan, "score": a.get("score"), "status": a["status"],
                            "attempt": a.get("id")})
        winner = best_of(rc, attempts)
        best = state["best"]
        update = {"ensembles": records, "ensembled": ensemble_members(state)}
        if winner is not None:
            update["finalists"] = [winner]
            update["stages"] = [{"stage": "ensemble", "score": winner["score"], "attempt": winner.get("id"),
                                 "label": winner["label"]}]
            if better(rc, winner, best):
                logger.info(f"ensemble: {winner['label']} beats the single best ({winner['score']:.5g})")
                update["best"] = winner
        return update
    return ensemble


@hookimpl
def register_nodes(register):
    register(NodeSpec("ensemble", make_ensemble, description="R ensembling plans over the final solutions"))
