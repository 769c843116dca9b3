"""The merge node: start from the best initial solution and merge in the next ones while the score improves."""

from loguru import logger

from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from graphs.evaluate import Job, ask, better, evaluate
from graphs.worklist import MAIN

MERGE_MARGIN = 1.25  # a merged script's seconds over the sum of its parents': both fits, plus contention


def make_merge(rc):
    def merge(state: dict) -> dict:
        ranked = sorted((a for a in state.get("drafts", {}).values() if a.get("score") is not None),
                        key=lambda a: a["score"], reverse=rc.metric.maximize)
        if not ranked:
            logger.warning("merge: no initial solution ran; nothing to merge")
            return {"notes": ["no initial solution produced a valid score"]}
        base = ranked[0]
        stages = [{"stage": "initial", "score": base["score"], "attempt": base.get("id"), "label": base["label"]}]
        merges = []
        for ref in ranked[1:]:
            if rc.search_time_left() <= 0:
                break
            expected = MERGE_MARGIN * ((base.get("seconds") or 0.0) + (ref.get("seconds") or 0.0))
            if expected > rc.search_time_left():
                # a merged script fits both models: one that cannot end in the time left would be killed at the
                # end of it, and the anytime search would get nothing (digits-images: a CNN + forest merge, 99 s)
                logger.info(f"merge: {ref['label']} into {base['label']} would take ~{expected:.0f}s, more than the "
                            f"{rc.search_time_left():.0f}s of search time left; merging stops")
                break
            code = ask(rc, "merge", base["code"], ref["code"])
            if not code:
                continue
            [merged] = evaluate(rc, [Job(code, "merge", f"{base['label']} + {ref['label']}",
                                         plan=f"merge {ref['label']} into {base['label']}", parent=base.get("id"))])
            merges.append(merged)
            if better(rc, merged, base):
                logger.info(f"merge: {merged['label']} improves to {merged['score']:.5g}")
                base = merged
            elif rc.task.strategy.merge_stop_at_first:
                logger.info(f"merge: adding {ref['label']} did not improve; merging stops")
                break
        stages.append({"stage": "merged", "score": base["score"], "attempt": base.get("id"), "label": base["label"]})
        pool = ranked + [m for m in merges if m.get("score") is not None]
        return {"best": base, "head": base, "track": MAIN, "tracks": {MAIN: base}, "pool": pool, "stages": stages}
    return merge


@hookimpl
def register_nodes(register):
    register(NodeSpec("merge", make_merge, description="merge candidates into the best while it improves"))
