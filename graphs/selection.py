"""The final choice, made on validation rows the search never scored on: the best of many attempts on one set of
rows looks better than it is, so a short list of finalists (the best, each track's head, each ensemble item's
winner) is compared on the held-out selection rows, and how much the search's score flattered it is recorded."""

from __future__ import annotations

from graphs.context import RunContext

FINALISTS = 5  # a short list: choosing among many on the selection rows would flatter the choice again


def finalists(rc: RunContext, state: dict) -> list[dict]:
    """The best solution, every track's head and every ensemble item's winner, distinct, best search score first."""
    seen, out = set(), []
    pool = [state.get("best"), *(state.get("tracks") or {}).values(), *state.get("finalists", [])]
    for a in sorted((a for a in pool if a and a.get("score") is not None), key=lambda a: a["score"],
                    reverse=rc.metric.maximize):
        # one script scored the same is one finalist, whichever attempts ran it (a side track that starts as the
        # main one's draft repeats its refinements from the cache: political-information had each twice)
        key = (a.get("code"), a["score"])
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out[:FINALISTS]


def choose_final(rc: RunContext, state: dict) -> tuple[dict | None, dict]:
    """(the solution to submit, the record of the choice). Without selection rows the search's best stays."""
    best = state.get("best")
    short = finalists(rc, state)
    rows = [{"label": a.get("label"), "attempt": a.get("id"), "score": a["score"], "holdout": a.get("holdout")}
            for a in short]
    if not short or rc.data.selection_truth is None or any(a.get("holdout") is None for a in short):
        why = "no selection rows (validation.selection is 0, or too few validation rows)" \
            if rc.data.selection_truth is None else "a finalist has no selection score"
        return best, {"method": "search score", "why": why, "candidates": rows,
                      "chosen": (best or {}).get("label")}
    chosen = short[0]
    for a in short[1:]:  # on the selection rows; ties keep the better search score (earlier in the list)
        if rc.metric.better(a["holdout"], chosen["holdout"]):
            chosen = a
    return chosen, {"method": "selection rows", "candidates": rows, "chosen": chosen.get("label"),
                    "search_score": chosen["score"], "holdout": chosen["holdout"],
                    # what the search's own score claims beyond the held-out rows (positive: it flattered)
                    "optimism": rc.metric.gain(chosen["score"], chosen["holdout"]),
                    "search_best": short[0].get("label")}
