"""What a run's language-model calls cost: calls, usable replies, tokens, seconds and (given prices) dollars per
role, summed from the run store's ``llm_calls``."""

from __future__ import annotations

import json

from core.store import RunStore


def usage_summary(store: RunStore, run_id: str | None = None, prices: dict | None = None) -> dict[str, dict]:
    """Per role (sorted), plus ``"total"``: ``calls`` (replies recorded, failed calls included), ``ok`` (usable
    replies), ``first_try`` and ``first_try_ok`` (replies to a first prompt, i.e. not to a retry after an unusable
    reply, and how many of those were usable), ``tokens_in``, ``tokens_out``, ``seconds`` and ``cost`` (dollars from
    ``prices = {input: $/token, output: $/token}``; None without prices). ``run_id=None``: every run in the store."""
    rows: dict[str, dict] = {}
    for call in store.llm_calls(run_id):
        row = rows.setdefault(call["role"], _empty())
        first = _is_first_try(call["prompt"])
        row["calls"] += 1
        row["ok"] += int(bool(call["ok"]))
        row["first_try"] += int(first)
        row["first_try_ok"] += int(first and bool(call["ok"]))
        row["tokens_in"] += call["tokens_in"] or 0
        row["tokens_out"] += call["tokens_out"] or 0
        row["seconds"] += call["seconds"] or 0.0
    total = _empty()
    for row in rows.values():
        for key in total:
            total[key] += row[key]
    out = {role: rows[role] for role in sorted(rows)}
    out["total"] = total
    for row in out.values():
        row["seconds"] = round(row["seconds"], 3)
        row["cost"] = None if prices is None else (row["tokens_in"] * float(prices.get("input", 0))
                                                   + row["tokens_out"] * float(prices.get("output", 0)))
    return out


def usage_table(summary: dict[str, dict]) -> str:
    """The summary as a Markdown table (one row per role, the total last)."""
    with_cost = any(row.get("cost") is not None for row in summary.values())
    head = "| role | calls | usable | first try usable | tokens in | tokens out | seconds |"
    head += " cost $ |" if with_cost else ""
    lines = [head, "|" + "---|" * (7 + with_cost)]
    for role, row in summary.items():
        first = f"{row['first_try_ok']}/{row['first_try']}"
        cells = [role, row["calls"], row["ok"], first, row["tokens_in"], row["tokens_out"], f"{row['seconds']:.1f}"]
        if with_cost:
            cells.append(f"{row['cost']:.4f}" if row.get("cost") is not None else "")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _empty() -> dict:
    return {"calls": 0, "ok": 0, "first_try": 0, "first_try_ok": 0, "tokens_in": 0, "tokens_out": 0, "seconds": 0.0}


def _is_first_try(prompt: str | None) -> bool:
    """A retry's prompt holds the earlier exchange: more than the system and user messages."""
    try:
        messages = json.loads(prompt or "")
    except ValueError:
        return True
    return not isinstance(messages, list) or sum(m.get("role") == "user" for m in messages if isinstance(m, dict)) <= 1
