"""The final choice: the best of many attempts on one set of rows looks better than it is, so a short list of
finalists (the best, each track's head, each ensemble item's winner) is compared on the search's rows and on held-out
selection rows together, and how much the search's score flattered the chosen one is recorded."""

from __future__ import annotations

from pathlib import Path

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
    # each finalist's score on every validation row it was not fitted on: the search's rows and the held-out ones,
    # weighted by their counts. The held-out rows alone are few: on political-information (288 of them) and
    # wilms-relapse they chose a finalist 3% and 0.3% behind on the search's rows, which graded worse on the test
    # rows than the search's best did (log loss 1.3814 against 1.3748; AUC 0.7057 against 0.7150)
    n_search, n_held = _rows(rc.data.truth), _rows(rc.data.selection_truth)
    for a, row in zip(short, rows):
        row["pooled"] = (a["score"] * n_search + a["holdout"] * n_held) / max(1, n_search + n_held)
    chosen, pooled = short[0], rows[0]["pooled"]
    for a, row in zip(short[1:], rows[1:]):  # ties keep the better search score (earlier in the list)
        if rc.metric.better(row["pooled"], pooled):
            chosen, pooled = a, row["pooled"]
    return chosen, {"method": "search and selection rows", "candidates": rows, "chosen": chosen.get("label"),
                    "rows": {"search": n_search, "selection": n_held},
                    "search_score": chosen["score"], "holdout": chosen["holdout"],
                    # what the search's own score claims beyond the held-out rows (positive: it flattered)
                    "optimism": rc.metric.gain(chosen["score"], chosen["holdout"]),
                    "search_best": short[0].get("label")}


def _rows(path: Path) -> int:
    """The rows of a truth file (its lines but the header)."""
    with open(path, "rb") as fh:
        return max(0, sum(1 for _ in fh) - 1)
