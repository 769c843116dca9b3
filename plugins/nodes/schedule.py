"""The schedule node: after MLE-STAR's first pass, keep working on what promises the most gain per second (refine
a track again, draft another model as a new track, ensemble new members) until the search time is spent or
nothing is left to try."""

from loguru import logger

from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from core.policy import Estimate
from graphs.evaluate import ask
from graphs.selection import choose_final
from graphs.worklist import (
    candidates,
    choose,
    final_estimate,
    finished,
    first_pass_log,
    more_cards,
    side_tracks,
    outcomes,
    reserve_growth,
    smaller,
)


def make_schedule(rc):
    def schedule(state: dict) -> dict:
        update: dict = {"worklog": []}
        if state.get("phase") != "anytime":
            update.update(phase="anytime", worklog=first_pass_log(rc, state))
            tracks = side_tracks(rc, state)
            if tracks:
                update["tracks"] = tracks
                logger.info(f"schedule: the first pass's {', '.join(tracks)} draft(s) become side tracks")
            cards = more_cards(rc, state)
            if cards:
                update["cards"] = cards
        entry = finished(rc, state)
        if entry is not None:
            update["worklog"].append(entry)
            shown = f"{entry['score']:.5g}" if entry.get("score") is not None else "no score"
            logger.info(f"schedule: {_name(entry['item'])} took {entry['seconds']:.1f}s, {shown}, "
                        f"gain {entry['gain']:.4g}")
        now = {**state, **{k: v for k, v in update.items() if k != "worklog"},
               "worklog": [*state.get("worklog", []), *update["worklog"]],
               "tracks": {**(state.get("tracks") or {}), **update.get("tracks", {})}}  # the state's reducer merges
        rc.final_seconds = final_estimate(rc, now)  # the reserve follows the solution that would be submitted
        left = rc.search_time_left()
        if not rc.task.strategy.anytime:
            return {**update, **_stop(rc, now, "first_pass", left, [])}
        items = candidates(rc, now) if left > 1 else []
        done = outcomes(now)
        estimates = [ask(rc, "estimate", item, done) or Estimate(gain=0, seconds=0) for item in items]
        for item, est in list(zip(items, estimates)):  # the last seconds: a smaller version may still fit
            small = smaller(item, rc.workers) if est.seconds > left else None
            if small is not None:
                items.append(small)
                estimates.append(ask(rc, "estimate", small, done) or Estimate(gain=0, seconds=0))
        growth = [reserve_growth(rc, now, item, est) for item, est in zip(items, estimates)]
        picked = choose(items, estimates, left, growth)
        if picked is None:
            fits = [e for e, g in zip(estimates, growth) if e.seconds + g <= left]
            reason = "budget" if left <= 1 or (items and not fits) else "exhausted"
            return {**update, **_stop(rc, now, reason, left, items)}
        item, est = picked
        best = state.get("best") or {}
        head = (now.get("tracks") or {}).get(item.track) if item.kind == "refine" else None
        work = {"item": item.model_dump(), "started": rc.clock.elapsed(), "estimate": est.model_dump(),
                "best_score": best.get("score"), "head_score": (head or {}).get("score")}
        logger.info(f"schedule: next {_name(work['item'])} (expected gain {est.gain:.3g} in {est.seconds:.0f}s; "
                    f"{len(items)} items, {left:.0f}s left)")
        if head is not None:
            update.update(head=head, track=item.track)
        return {**update, "work": work}
    return schedule


def _stop(rc, state: dict, reason: str, left: float, items: list) -> dict:
    """The search is over: say why, and choose the solution to submit on the rows the search never scored on."""
    said = {"budget": "budget spent", "exhausted": "nothing left to try", "first_pass": "strategy.anytime is off"}
    logger.info(f"schedule: search ends ({said[reason]}, {left:.0f}s of search time left)")
    chosen, record = choose_final(rc, state)
    if record["method"] == "search and selection rows":
        logger.info(f"selection: {record['chosen']} (search {record['search_score']:.5g}, selection rows "
                    f"{record['holdout']:.5g}; the search's best was {record['search_best']})")
    update = {"work": None, "selection": record,
              "stopped": {"reason": reason, "elapsed": round(rc.clock.elapsed(), 1), "search_left": round(left, 1),
                          "items_left": [_name(i.model_dump()) for i in items]}}
    if chosen is not None:
        update["best"] = chosen
    return update


def _name(item: dict) -> str:
    return {"refine": f"refine track {item.get('track')}", "draft": f"draft {item.get('card')}"}.get(
        item["kind"], item["kind"])


@hookimpl
def register_nodes(register):
    register(NodeSpec("schedule", make_schedule, description="anytime work queue: the next item by gain per second"))
