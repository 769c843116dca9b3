"""The run's result files: result.json (machine readable) and report.md (the same for a person)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from core.files import write_atomic
from core.llm_usage import usage_summary, usage_table


def result_document(rc, state: dict) -> dict:
    """Scores of every stage, chosen blocks and plans, runs and seconds per node."""
    attempts = rc.store.attempts(run_id=rc.run_id)
    runs = defaultdict(lambda: {"runs": 0, "failed": 0, "cached": 0, "script_seconds": 0.0})
    for a in attempts:
        r = runs[a["node"].split(":")[0]]
        r["runs"] += 1
        r["failed"] += a["status"] != "ok"
        r["cached"] += bool(a["cached"])
        r["script_seconds"] = round(r["script_seconds"] + (0.0 if a["cached"] else a["seconds"] or 0.0), 2)
    node_seconds: dict[str, float] = defaultdict(float)
    for t in state.get("timings", []):
        node_seconds[t["node"]] = round(node_seconds[t["node"]] + t["seconds"], 2)
    stages = state.get("stages", [])
    by_stage = {s["stage"]: s["score"] for s in stages}
    return {
        "task": rc.task.name, "run_id": rc.run_id, "metric": rc.task.metric,
        "direction": rc.metric.direction, "policy": rc.task.policy.name,
        "isolation": getattr(rc.executor, "isolation", "unknown"),  # what confined the scripts: bwrap, none, ...
        "scores": {
            "best_initial": by_stage.get("initial"),
            "merged": by_stage.get("merged"),
            "outer_steps": [s["score"] for s in stages if s["stage"].startswith("outer_")],
            "ensemble": by_stage.get("ensemble"),
            "final": by_stage.get("final"),
            "final_fidelity": state.get("final", {}).get("fidelity"),
        },
        "stages": stages,
        "drafts": [{"label": a.get("label"), "score": a.get("score"), "status": a.get("status")}
                   for _, a in sorted(state.get("drafts", {}).items(), key=lambda kv: int(kv[0]))],
        "refined_blocks": state.get("refined", []),
        "plans": state.get("plans", []),
        "ablations": [{"step": a["step"], "rows": a["rows"], "skipped": a.get("skipped", []), "text": a.get("text")}
                      for a in state.get("ablations", [])],
        "ensembles": state.get("ensembles", []),
        # after the first pass: every work item the scheduler ran, and why the search ended
        "search": {"stopped": state.get("stopped"), "work": [e for e in state.get("worklog", [])
                                                              if not e.get("first_pass")]},
        "selection": state.get("selection"),
        "checks": state.get("checks", {}),
        "final": state.get("final", {}),
        "notes": state.get("notes", []),
        "handed_to_heuristic": dict(rc.handed_to_heuristic),  # roles the policy failed too often: role -> why
        "runs_by_node": dict(runs),
        "seconds_by_node": dict(node_seconds),
        "llm_usage": usage_summary(rc.store, rc.run_id, rc.task.policy.options.get("prices")),
        "wall_seconds": round(rc.clock.elapsed(), 1),
        "budget_seconds": rc.task.budget.total_seconds,
    }


def _fmt(x) -> str:
    return "—" if x is None else (f"{x:.5g}" if isinstance(x, float) else str(x))


def _item(item: dict) -> str:
    return {"refine": f"refine track {item.get('track')}", "draft": f"draft {item.get('card')}"}.get(
        item["kind"], item["kind"])


def report_markdown(result: dict, ablation_tables: list[str] | None = None) -> str:
    s = result["scores"]
    lines = [f"# mlestar run {result['run_id']}: {result['task']}", "",
             f"Metric **{result['metric']}** ({result['direction']}), policy `{result['policy']}`, "
             f"scripts isolated by `{result.get('isolation', 'unknown')}`, "
             f"wall time {result['wall_seconds']} s of a {result['budget_seconds']:g} s budget.", "",
             "## Score by stage", "", "| stage | score | solution |", "|---|---|---|"]
    for st in result["stages"]:
        lines.append(f"| {st['stage']} | {_fmt(st['score'])} | {st.get('label') or ''} |")
    lines += ["", f"Final: **{_fmt(s['final'])}** on the validation rows ({s['final_fidelity'] or 'no'} data); "
                  f"best initial {_fmt(s['best_initial'])}.", "", "## Initial solutions", "",
              "| model card | score | status |", "|---|---|---|"]
    lines += [f"| {d['label']} | {_fmt(d['score'])} | {d['status']} |" for d in result["drafts"]]
    for table, abl in zip(ablation_tables or [], result["ablations"]):
        lines += ["", f"## Ablation, outer step {abl['step']}", "", table, "", abl.get("text") or ""]
    if result["plans"]:
        lines += ["", "## Refinement plans", "", "| step | block | plan | score | status |", "|---|---|---|---|---|"]
        lines += [f"| {p['step']} | {p['block']} | {p['plan'].replace('|', '/')} | {_fmt(p['score'])} | {p['status']} |"
                  for p in result["plans"]]
    if result["ensembles"]:
        lines += ["", "## Ensembles", "", "| round | plan | score | status |", "|---|---|---|---|"]
        lines += [f"| {e['round']} | {e['plan'].replace('|', '/')} | {_fmt(e['score'])} | {e['status']} |"
                  for e in result["ensembles"]]
    search = result.get("search") or {}
    if search.get("stopped"):
        reason = search["stopped"]["reason"]
        why = {"budget": "the search time was spent", "exhausted": "nothing was left to try",
               "first_pass": "strategy.anytime is off (MLE-STAR's first pass only)"}.get(reason, reason)
        lines += ["", "## Anytime search", "", f"After the first pass the scheduler ran {len(search['work'])} work "
                  f"items; the search ended because {why} (at {search['stopped']['elapsed']} s).", ""]
        if search["work"]:
            lines += ["| item | expected gain | gain | seconds | score |", "|---|---|---|---|---|"]
            lines += [f"| {_item(e['item'])} | {_fmt((e.get('estimate') or {}).get('gain'))} | {_fmt(e['gain'])} | "
                      f"{e['seconds']} | {_fmt(e.get('score'))} |" for e in search["work"]]
    selection = result.get("selection") or {}
    if selection.get("candidates"):
        lines += ["", "## Final choice", "", f"Chosen by the {selection['method']}: **{selection['chosen']}**"
                  + (f" ({selection['why']})." if selection.get("why") else
                     f"; the search's score {_fmt(selection['search_score'])}, on the selection rows "
                     f"{_fmt(selection['holdout'])} (optimism {_fmt(selection['optimism'])})."), "",
                  "| finalist | search score | selection rows | both, weighted by rows |", "|---|---|---|---|"]
        lines += [f"| {c['label']} | {_fmt(c['score'])} | {_fmt(c['holdout'])} | {_fmt(c.get('pooled'))} |"
                  for c in selection["candidates"]]
    checks = result["checks"]
    lines += ["", "## Checks", "", f"- leakage findings: {len(checks.get('leakage', []))}"]
    lines += [f"  - {f}" for f in checks.get("leakage", [])]
    lines += [f"- unused provided files: {', '.join(checks.get('unused_files', [])) or 'none'}"]
    lines += [f"- fixed: {f}" for f in checks.get("fixed", [])]
    lines += ["", "## Runs and time by node", "", "| node | runs | failed | cached | script s | node s |",
              "|---|---|---|---|---|---|"]
    for node, secs in result["seconds_by_node"].items():
        r = result["runs_by_node"].get(node, {"runs": 0, "failed": 0, "cached": 0, "script_seconds": 0})
        lines.append(f"| {node} | {r['runs']} | {r['failed']} | {r['cached']} | {r['script_seconds']} | {secs} |")
    usage = result.get("llm_usage") or {}
    if usage.get("total", {}).get("calls"):
        lines += ["", "## Language-model calls by role", "", usage_table(usage)]
    notes = result["notes"] + [f"role {role} handed to the heuristic policy: {why}"
                               for role, why in result.get("handed_to_heuristic", {}).items()]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_reports(out: Path, result: dict, ablation_tables: list[str] | None = None) -> None:
    write_atomic(out / "result.json", json.dumps(result, indent=1, default=str))
    write_atomic(out / "report.md", report_markdown(result, ablation_tables))
