"""The anytime scheduler's work queue: what can still be done after MLE-STAR's first pass (refine a track again,
draft another retrieved model as a new track, more ensemble rounds), what each finished item gained, and which item
to run next: the most expected gain per second that fits in the search time left."""

from __future__ import annotations

from loguru import logger

from ablation import split_blocks
from ablation.summary import NOT_REFINED
from core.policy import Estimate, WorkItem, WorkOutcome
from graphs.context import RunContext
from graphs.ensembling import members_for
from graphs.selection import choose_final

MAIN = "main"


def head_of(state: dict) -> dict | None:
    """The solution the outer loop works on (the merged best until tracks exist)."""
    return state.get("head") or state.get("best")


def stale_key(track: str, block: str, head: dict) -> str:
    return f"{track}|{block}|{head.get('id')}"


def blocks_left(state: dict, track: str, head: dict) -> list[str]:
    """The head's refinable blocks not yet refined from this very head without a gain."""
    stale = set(state.get("stale", []))
    return [b.key for b in split_blocks(head.get("code", ""))
            if b.kind not in NOT_REFINED and stale_key(track, b.key, head) not in stale]


def ensemble_members(state: dict) -> list[int | None]:
    """Ids of the solutions an ensemble would combine now (what changes when a new one is worth running)."""
    return sorted(a.get("id") or -1 for a in state.get("pool", []) if a.get("score") is not None
                  and not a.get("members"))


def candidates(rc: RunContext, state: dict) -> list[WorkItem]:
    """Every item still worth trying; empty when nothing is left."""
    items = []
    for track, head in _tracks(state).items():
        left = blocks_left(state, track, head)
        if left and head.get("score") is not None:
            items.append(WorkItem(kind="refine", track=track, facts={
                "head_score": head["score"], "head_seconds": head.get("seconds") or 1.0, "blocks_left": len(left),
                "plans": rc.task.budget.plans, "workers": rc.workers, "is_best": _same(head, state.get("best")),
                "ablated": _ablated(state, head)}))
    drafted = {a.get("label") for a in state.get("drafts", {}).values()}
    for card in state.get("cards", []):
        if card["name"] not in drafted:
            seconds = [a.get("seconds") or 0.0 for a in state.get("drafts", {}).values()]
            items.append(WorkItem(kind="draft", card=card["name"], facts={
                "drafts": len(drafted), "best_score": (state.get("best") or {}).get("score"),
                "draft_seconds": sum(seconds) / len(seconds) if seconds else 10.0}))
            break  # the search backend ranks cards: the next one is the one to try
    members = ensemble_members(state)
    if rc.task.budget.ensemble_rounds > 0 and len(members) >= 2 and members != state.get("ensembled"):
        items.append(WorkItem(kind="ensemble", facts={"members": len(members), "rounds": rc.task.budget.ensemble_rounds,
                                                      "best_score": (state.get("best") or {}).get("score")}))
    return items


def _tracks(state: dict) -> dict[str, dict]:
    tracks = dict(state.get("tracks") or {})
    if not tracks and head_of(state) is not None:
        tracks[MAIN] = head_of(state)
    return tracks


def _same(a: dict | None, b: dict | None) -> bool:
    return bool(a and b) and a.get("id") == b.get("id") and a.get("code") == b.get("code")


def _ablated(state: dict, head: dict) -> bool:
    return any(r.get("head") == head.get("id") for r in state.get("ablations", []))


def work_size(state: dict, kind: str, key: str, default: int) -> int:
    """How many plans (or rounds) the scheduler gave the running item of ``kind``; ``default`` in the first pass."""
    work = state.get("work") if state.get("phase") == "anytime" else None
    if not work or work["item"]["kind"] != kind:
        return default
    return int(work["item"]["facts"].get(key, default))


def smaller(item: WorkItem, workers: int) -> WorkItem | None:
    """The same item cut down to fit the last seconds: one batch of plans, or one ensemble round (None: it is as
    small as it gets)."""
    f = item.facts
    if item.kind == "refine" and f.get("plans", 1) > max(1, workers):
        return item.model_copy(update={"facts": {**f, "plans": max(1, workers)}})
    if item.kind == "ensemble" and f.get("rounds", 1) > 1:
        return item.model_copy(update={"facts": {**f, "rounds": 1}})
    return None


def finished(rc: RunContext, state: dict) -> dict | None:
    """The worklog entry of the item that just ran: its gain (the track head's for refinement, the overall best's
    otherwise) and its seconds."""
    work = state.get("work")
    if not work:
        return None
    item = WorkItem.model_validate(work["item"])
    if item.kind == "refine":
        before, after = work.get("head_score"), (_tracks(state).get(item.track) or {}).get("score")
    elif item.kind == "draft":
        drafted = [a for a in state.get("drafts", {}).values() if a.get("label") == item.card]
        before, after = work.get("best_score"), (drafted[0].get("score") if drafted else None)
    else:
        before, after = work.get("best_score"), (state.get("best") or {}).get("score")
    gain = 0.0
    if before is not None and after is not None:
        gain = max(0.0, rc.metric.gain(after, before) or 0.0)
    entry = {"item": item.model_dump(), "gain": gain, "seconds": round(rc.clock.elapsed() - work["started"], 3),
             "estimate": work.get("estimate"), "started": round(work["started"], 3), "score": after}
    return entry


def outcomes(state: dict, extra: dict | None = None) -> list[WorkOutcome]:
    log = [*state.get("worklog", []), *([extra] if extra else [])]
    return [WorkOutcome(item=WorkItem.model_validate(e["item"]), gain=e["gain"], seconds=e["seconds"]) for e in log]


def choose(items: list[WorkItem], estimates: list[Estimate], time_left: float,
           growth: list[float] | None = None) -> tuple[WorkItem, Estimate] | None:
    """The item with the most expected gain per second among those expected to fit in ``time_left`` (with what each
    may add to the final rerun's reserve, ``growth``); ties go to the earlier item. None when nothing fits or nothing
    is expected to gain."""
    best, best_rate = None, 0.0
    for i, (item, est) in enumerate(zip(items, estimates)):
        if est.seconds + (growth[i] if growth else 0.0) > time_left or est.gain <= 0:
            continue
        rate = est.gain / max(est.seconds, 0.1)
        if best is None or rate > best_rate:
            best, best_rate = (item, est), rate
    return best



def first_pass_log(rc: RunContext, state: dict) -> list[dict]:
    """Worklog entries for MLE-STAR's first pass, so the estimates start from what it measured: each outer step's
    gain and seconds (its ablate, target and refine node calls), and each draft's seconds."""
    by_node: dict[str, list[float]] = {}
    for t in state.get("timings", []):
        by_node.setdefault(t["node"], []).append(t["seconds"])
    log = []
    stages = state.get("stages", [])
    for i, stage in enumerate(stages):
        if not stage["stage"].startswith("outer_") or i == 0:
            continue
        k = len([s for s in stages[:i] if s["stage"].startswith("outer_")])
        seconds = sum(by_node.get(n, [])[k] if k < len(by_node.get(n, [])) else 0.0
                      for n in ("ablate", "target", "refine"))
        gain = max(0.0, rc.metric.gain(stage["score"], stages[i - 1]["score"]) or 0.0)
        item = WorkItem(kind="refine", track=MAIN, facts={"plans": rc.task.budget.plans})
        log.append({"item": item.model_dump(), "gain": gain,
                    "seconds": round(seconds, 3), "first_pass": True})
    for a in state.get("drafts", {}).values():
        log.append({"item": WorkItem(kind="draft", card=a.get("label") or "").model_dump(), "gain": 0.0,
                    "seconds": a.get("seconds") or 0.0, "first_pass": True})
    return log


def side_tracks(rc: RunContext, state: dict) -> dict[str, dict]:
    """The first pass's best draft of each model family the main track has not merged in, as a track of its own:
    refined, it becomes a member the ensemble can use. On wilms-relapse the linear draft won and every refinement
    went to it (gaining 0.002 AUC), while default trees (0.66) were never regularised into a partner for a blend."""
    family = {c["name"]: c.get("family") for c in state.get("cards", [])}
    tracks = {MAIN: head_of(state) or {}, **(state.get("tracks") or {})}
    # a refined head is labelled by its step ("refine t1 k2 ..."): the main track's models are named by the merge
    # it grew from (political-information: main was the linear draft, refined, and linear became a side track
    # that repeated main's refinements)
    labels = [str(head.get("label", "")) for head in tracks.values()]
    labels += [s.get("label") or "" for s in state.get("stages", []) if s.get("stage") == "merged"]
    taken = {family.get(name) for label in labels for name in label.split(" + ")}
    ranked = sorted((a for a in state.get("drafts", {}).values() if a.get("score") is not None),
                    key=lambda a: a["score"], reverse=rc.metric.maximize)
    new = {}
    for attempt in ranked:
        kind = family.get(attempt.get("label"))
        if kind is None or kind in taken or attempt.get("label") in tracks:
            continue
        taken.add(kind)
        new[attempt["label"]] = attempt
    return new


def more_cards(rc: RunContext, state: dict, extra: int = 8) -> list[dict]:
    """The run's cards plus up to ``extra`` more from the search backend (new names only, appended in its order),
    or [] when it has none to add."""
    cards = list(state.get("cards", []))
    known = {c["name"] for c in cards}
    try:
        found = rc.search.search(rc.ctx.card_query(), limit=len(cards) + extra)
    except Exception as exc:  # noqa: BLE001 - no more cards is no reason to end a run
        logger.warning(f"schedule: the search backend found no more model cards ({type(exc).__name__}: {exc})")
        return []
    new = [c.model_dump() for c in found if c.name not in known]
    return cards + new if new else []


def final_estimate(rc: RunContext, state: dict) -> float | None:
    """Seconds the final rerun on every labelled row should take, for the solution the final choice would submit
    now (graphs.selection.choose_final, on the selection rows: the search's best may be one model, the chosen one
    an ensemble). Not the costliest finalist: that reserve, kept for an ensemble the selection rows did not
    choose, left 14-16 s of aids-australia's and doctor-visits' 120 s unused. The scheduler asks again after every
    item, so the reserve follows the choice; a choice made costlier by the very last item is what submit's grace
    (or its search-stage fallback) is for."""
    chosen, _ = choose_final(rc, state)
    return rerun_seconds(rc, chosen) if chosen else None


def rerun_seconds(rc: RunContext, attempt: dict) -> float | None:
    """Seconds a solution's rerun on every labelled row should take: each script's start-up (imports) plus its fit
    on one fold scaled by how many more rows it fits, members ``workers`` at a time, then the ensemble script as
    it ran in the search."""
    if not attempt or attempt.get("seconds") is None:
        return None
    ctx = rc.ctx
    members = attempt.get("members") or []

    def alone(a: dict) -> float:
        folds = max(1, a.get("folds") or 1)
        startup = min(a.get("startup") or 0.0, a.get("seconds") or 0.0)
        search_rows = min(ctx.n_train, rc.task.budget.search_rows) * ((folds - 1) / folds if folds > 1 else 1.0)
        rows = (ctx.n_train + ctx.n_valid) / max(1.0, search_rows)
        return startup + rows * ((a.get("seconds") or 0.0) - startup) / folds

    if not members:
        return alone(attempt)
    return sum(alone(m) for m in members) / max(1, rc.workers) + attempt["seconds"]


def reserve_growth(rc: RunContext, state: dict, item: WorkItem, est: Estimate) -> float:
    """Search seconds the final rerun's reserve would grow by if the item's result became the final choice: its
    solution's rerun (a refined head's like the head's, a draft's from its expected seconds, an ensemble's from the
    members it would combine) against the reserve kept now. wilms-relapse ran an ensemble (1 s expected) with 3 s
    of search left; it became the choice, its five members' rerun needed 13 s more, and the run ended 7 s past its
    budget."""
    best = head_of(state) or {}
    if item.kind == "refine":
        solution = (_tracks(state).get(item.track) or best)
    elif item.kind == "draft":
        solution = {"seconds": est.seconds, "folds": best.get("folds"), "startup": best.get("startup")}
    else:
        rounds = max(1, int(item.facts.get("rounds", 1)))
        solution = {"members": members_for(rc, state), "seconds": est.seconds / rounds}
    seconds = rerun_seconds(rc, solution)
    return 0.0 if seconds is None else max(0.0, rc.reserve_for(seconds) - rc.reserve())
