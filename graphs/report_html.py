"""report.html: the run's report for a person with a browser — score by stage and over time, the solution tree, the
ablations, time per node and the final code with its refined blocks marked — as one self-contained, offline file."""

from __future__ import annotations

import base64
import html
import io
import sqlite3
from collections import defaultdict
from pathlib import Path

from matplotlib.figure import Figure

from ablation import split_blocks
from core.files import write_atomic
from core.store import RunStore

NODE_COLOURS = {"draft": "#4C72B0", "merge": "#8172B2", "ablate": "#CCB974", "refine": "#55A868",
                "ensemble": "#C44E52", "check": "#937860", "submit": "#222222", "debug": "#DA8BC3"}
OTHER_COLOUR = "#8C8C8C"
BASELINE_COLOURS = ["#DD8452", "#64B5CD", "#8C613C", "#DA8BC3", "#4C72B0"]
GOOD, BAD = "#55A868", "#C44E52"
PLAN_CHARS = 160  # plan text shown in a tree line; the whole plan is in the line's tooltip


def write_report_html(out_dir: Path, result: dict, store_path: Path, *, baselines: dict[str, float] | None = None,
                      final_test: float | None = None) -> Path:
    """Write ``report.html`` into ``out_dir`` (beside report.md) from result.json's content, the run store and
    ``out_dir/final_solution.py``; returns its path. A missing store or solution leaves that section empty.
    ``baselines`` (label -> score) and ``final_test`` (the final submission's score) are drawn on the anytime curve
    as they are given; the bench passes test-set scores, labelled so."""
    out_dir = Path(out_dir)
    attempts, started_at = _from_store(Path(store_path), result["run_id"])
    solution = out_dir / "final_solution.py"
    code = solution.read_text() if solution.is_file() else ""
    path = out_dir / "report.html"
    write_atomic(path, report_html(result, attempts, code, started_at, baselines=baselines, final_test=final_test))
    return path


def report_html(result: dict, attempts: list[dict], code: str, started_at: float | None = None, *,
                baselines: dict[str, float] | None = None, final_test: float | None = None) -> str:
    """The whole page; ``attempts`` are the run store's rows of this run, ``started_at`` the run's start time;
    ``baselines`` and ``final_test`` as in write_report_html."""
    maximize = result.get("direction") == "maximize"
    s = result.get("scores", {})
    title = f"mlestar run {result['run_id']}: {result['task']}"
    sections = [
        f"<h1>{_e(title)}</h1>",
        f"<p class='lead'>Metric <b>{_e(result['metric'])}</b> ({_e(result.get('direction', ''))}), policy "
        f"<code>{_e(result.get('policy', ''))}</code>. Final validation score <b>{_fmt(s.get('final'))}</b> "
        f"({_e(s.get('final_fidelity') or 'no')} data), best initial {_fmt(s.get('best_initial'))}; wall time "
        f"{_fmt(result.get('wall_seconds'))} s of a {_fmt(result.get('budget_seconds'))} s budget; "
        f"{len(attempts)} script attempts.</p>",
        "<h2 id='scores'>Score by stage and over time</h2>",
        _figure(_plot_stages(result, maximize), "Validation score after each stage"),
        _stage_table(result),
        _figure(_plot_attempts(attempts, started_at, result["metric"], maximize),
                "Every scored attempt over the run's time, by node; the line is the best search score so far")
        if attempts else "<p class='none'>No attempts in the run store.</p>",
        _anytime(result, attempts, started_at, maximize, baselines or {}, final_test),
        "<h2 id='tree'>Solution tree</h2>",
        "<p>Which attempt came from which (the attempt refined, merged into, ablated or debugged). "
        "<span class='final-mark'>★</span> the final submission; <span class='chosen'>bold</span> the solution "
        "chosen at a stage.</p>",
        _tree(attempts, result),
        "<h2 id='ablations'>Ablations</h2>",
        _ablations(result),
        "<h2 id='time'>Time per node</h2>",
        _figure(_plot_time(result), "Wall seconds spent in each node, and seconds of script execution it ran")
        if result.get("seconds_by_node") else "<p class='none'>No node timings.</p>",
        "<h2 id='code'>Final solution</h2>",
        _code(code, result.get("refined_blocks", [])),
    ]
    return PAGE.format(title=_e(title), css=CSS, body="\n".join(sections))


# --- data -----------------------------------------------------------------------------------------------------

def _from_store(store_path: Path, run_id: str) -> tuple[list[dict], float | None]:
    if not store_path.is_file():
        return [], None
    store = RunStore(store_path)
    try:
        attempts = store.attempts(run_id=run_id)
        started = [r["started_at"] for r in store.runs() if r["run_id"] == run_id]
    except sqlite3.Error:
        return [], None
    finally:
        store.close()
    return attempts, (started[0] if started else None)


def _node(a: dict) -> str:
    return a["node"].split(":")[0]


def best_so_far(attempts: list[dict], started_at: float | None, maximize: bool) -> list[tuple[float, float]]:
    """The anytime curve: (seconds since the run started, best validation score so far) at each attempt that
    improved on the best, in finishing order. Every scored attempt counts except the submit node's: its rerun trains
    on all training rows, the validation rows included, so its score is no validation score."""
    scored = sorted((a for a in attempts if a["score"] is not None and _node(a) != "submit"),
                    key=lambda a: a["finished_at"] or a["started_at"])
    if not scored:
        return []
    t0 = started_at if started_at is not None else min(a["started_at"] for a in attempts)
    curve: list[tuple[float, float]] = []
    for a in scored:
        if not curve or (a["score"] > curve[-1][1] if maximize else a["score"] < curve[-1][1]):
            curve.append(((a["finished_at"] or a["started_at"]) - t0, a["score"]))
    return curve


# --- plots ----------------------------------------------------------------------------------------------------

def _plot_stages(result: dict, maximize: bool) -> Figure:
    stages = [st for st in result.get("stages", []) if st.get("score") is not None]
    fig = Figure(figsize=(9, 3.2))
    ax = fig.add_subplot()
    if not stages:
        ax.text(0.5, 0.5, "no stage was scored", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    xs = range(len(stages))
    ys = [st["score"] for st in stages]
    ax.plot(xs, ys, marker="o", color=NODE_COLOURS["draft"], linewidth=2)
    for x, st in zip(xs, stages):
        ax.annotate(f"{st['score']:.4g}", (x, st["score"]), textcoords="offset points", xytext=(0, 8),
                    ha="center", fontsize=9)
    ax.set_xticks(list(xs), [st["stage"] for st in stages])
    ax.set_ylabel(f"{result['metric']} ({'higher' if maximize else 'lower'} is better)")
    _pad(ax, ys)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _plot_attempts(attempts: list[dict], started_at: float | None, metric: str, maximize: bool) -> Figure:
    t0 = started_at if started_at is not None else min(a["started_at"] for a in attempts)
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    scored = [a for a in attempts if a["score"] is not None]
    by_node: dict[str, list[dict]] = defaultdict(list)
    for a in scored:
        by_node[_node(a)].append(a)
    for node, rows in by_node.items():
        ax.scatter([(a["finished_at"] or a["started_at"]) - t0 for a in rows], [a["score"] for a in rows],
                   label=node, color=NODE_COLOURS.get(node, OTHER_COLOUR), s=28, zorder=3,
                   marker="D" if node == "submit" else "o")
    best, xs, ys = None, [], []
    for a in sorted((a for a in scored if a.get("fidelity") != "full"), key=lambda a: a["finished_at"] or 0):
        if best is None or (a["score"] > best if maximize else a["score"] < best):
            best = a["score"]
        xs.append((a["finished_at"] or a["started_at"]) - t0)
        ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="#444444", linewidth=1, alpha=0.7, label="best so far")
    failed = [a for a in attempts if a["score"] is None]
    if failed and scored:
        low = min(a["score"] for a in scored) if maximize else max(a["score"] for a in scored)
        ax.scatter([(a["finished_at"] or a["started_at"]) - t0 for a in failed], [low] * len(failed),
                   marker="x", color=BAD, label="failed (no score)", zorder=3)
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel(f"{metric} ({'higher' if maximize else 'lower'} is better)")
    if scored:
        _pad(ax, [a["score"] for a in scored])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def _anytime(result: dict, attempts: list[dict], started_at: float | None, maximize: bool,
             baselines: dict[str, float], final_test: float | None) -> str:
    curve = best_so_far(attempts, started_at, maximize)
    if not curve:
        return "<p class='none'>No scored attempt to draw the best validation score over time from.</p>"
    # The curve runs on to the run's end, where the final submission's test score (when given) is marked.
    end = max(curve[-1][0], result.get("wall_seconds") or 0.0)
    caption = "Best validation score so far over the run's time (every scored attempt but the final rerun's)"
    if baselines or final_test is not None:
        caption += "; dashed lines and the star are scores as labelled, for comparison"
    return _figure(_plot_anytime(curve, end, result["metric"], maximize, baselines, final_test), caption)


def _plot_anytime(curve: list[tuple[float, float]], end: float, metric: str, maximize: bool,
                  baselines: dict[str, float], final_test: float | None) -> Figure:
    fig = Figure(figsize=(9, 3.4))
    ax = fig.add_subplot()
    xs, ys = [x for x, _ in curve], [y for _, y in curve]
    ax.step([*xs, end], [*ys, ys[-1]], where="post", color=NODE_COLOURS["refine"], linewidth=2,
            label="agent: best validation score so far")
    ax.scatter(xs, ys, color=NODE_COLOURS["refine"], s=20, zorder=3)
    for i, (label, score) in enumerate(baselines.items()):
        ax.axhline(score, color=BASELINE_COLOURS[i % len(BASELINE_COLOURS)], linestyle="--", linewidth=1.3,
                   label=f"{label}: {score:.4g}")
    if final_test is not None:
        ax.scatter([end], [final_test], marker="*", s=160, color="#d19a00", edgecolor="#222222", zorder=4,
                   label=f"agent: final submission (test): {final_test:.4g}")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel(f"{metric} ({'higher' if maximize else 'lower'} is better)")
    ax.set_xlim(0, end * 1.04 or 1)
    _pad(ax, [*ys, *baselines.values(), *([final_test] if final_test is not None else [])])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def _plot_ablation(rows: list[dict], target: str | None) -> Figure:
    rows = list(reversed(rows))  # barh draws bottom-up; keep the table's order top-down
    fig = Figure(figsize=(9, 0.45 * len(rows) + 1.1))
    ax = fig.add_subplot()
    effects = [r["effect"] if r.get("effect") is not None else 0.0 for r in rows]
    colours = [OTHER_COLOUR if r.get("effect") is None else (GOOD if r["effect"] >= 0 else BAD) for r in rows]
    ax.barh(range(len(rows)), effects, color=colours)
    labels = [r["block_key"] + (" (refined next)" if r["block_key"] == target else "") for r in rows]
    ax.set_yticks(range(len(rows)), labels)
    for i, r in enumerate(rows):
        text = f"{r['effect']:+.4g}" if r.get("effect") is not None else f"no score ({r.get('status', '?')})"
        ax.annotate(text, (effects[i], i), textcoords="offset points", xytext=(4 if effects[i] >= 0 else -4, 0),
                    ha="left" if effects[i] >= 0 else "right", va="center", fontsize=9)
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_xlabel("score lost without the block (positive: the block helps)")
    span = max((abs(e) for e in effects), default=0.0) or 1.0
    ax.set_xlim(-1.35 * span if min(effects) < 0 else -0.05 * span, 1.35 * span)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def _plot_time(result: dict) -> Figure:
    node_seconds = result.get("seconds_by_node", {})
    runs = result.get("runs_by_node", {})
    nodes = list(reversed(list(node_seconds)))
    fig = Figure(figsize=(9, 0.42 * len(nodes) + 1.2))
    ax = fig.add_subplot()
    ys = range(len(nodes))
    ax.barh([y + 0.2 for y in ys], [node_seconds[n] for n in nodes], height=0.4, color=NODE_COLOURS["draft"],
            label="in the node (wall)")
    ax.barh([y - 0.2 for y in ys], [runs.get(n, {}).get("script_seconds", 0.0) for n in nodes], height=0.4,
            color=NODE_COLOURS["ablate"], label="script execution (summed over parallel runs)")
    for y, n in zip(ys, nodes):
        ax.annotate(f"{node_seconds[n]:.1f} s", (node_seconds[n], y + 0.2), textcoords="offset points",
                    xytext=(3, 0), va="center", fontsize=8)
    ax.set_yticks(list(ys), nodes)
    ax.set_xlabel("seconds")
    ax.set_xlim(0, 1.15 * max([*node_seconds.values(), *(r.get("script_seconds", 0) for r in runs.values()), 1]))
    ax.legend(fontsize=8, loc="lower right", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def _pad(ax, ys: list[float]) -> None:
    lo, hi = min(ys), max(ys)
    margin = (hi - lo) * 0.15 or abs(hi) * 0.02 or 0.01
    ax.set_ylim(lo - margin, hi + 1.6 * margin)


def _figure(fig: Figure, caption: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


# --- tables, tree, code -----------------------------------------------------------------------------------------

def _stage_table(result: dict) -> str:
    rows = "".join(f"<tr><td>{_e(st['stage'])}</td><td class='num'>{_fmt(st.get('score'))}</td>"
                   f"<td>{_e(st.get('label') or '')}</td><td>{_e(st.get('block') or '')}</td>"
                   f"<td class='num'>{_e(st.get('attempt', ''))}</td></tr>" for st in result.get("stages", []))
    return ("<table><thead><tr><th>stage</th><th>score</th><th>solution</th><th>block refined</th>"
            f"<th>attempt</th></tr></thead><tbody>{rows}</tbody></table>")


def _tree(attempts: list[dict], result: dict) -> str:
    if not attempts:
        return "<p class='none'>No attempts in the run store.</p>"
    ids = {a["attempt_id"] for a in attempts}
    children: dict[int | None, list[dict]] = defaultdict(list)
    for a in attempts:
        children[a["parent_id"] if a["parent_id"] in ids else None].append(a)
    final = result.get("final", {}).get("attempt")
    chosen = {st.get("attempt") for st in result.get("stages", [])}

    def item(a: dict) -> str:
        node = _node(a)
        score = f"<b class='score'>{_fmt(a['score'])}</b>" if a["score"] is not None else \
            f"<span class='failed'>{_e(a['status'])}</span>"
        plan = a.get("plan") or ""
        tags = " <span class='tag'>full data</span>" if a.get("fidelity") == "full" else ""
        cls = " ".join(c for c in ("chosen" if a["attempt_id"] in chosen else "",
                                   "final" if a["attempt_id"] == final else "") if c)
        star = "<span class='final-mark'>★</span> " if a["attempt_id"] == final else ""
        took = "from the cache" if a["cached"] else f"{a['seconds'] or 0:.1f} s"
        line = (f"<span class='att {cls}' data-attempt='{a['attempt_id']}'>{star}"
                f"<span class='node' style='background:{NODE_COLOURS.get(node, OTHER_COLOUR)}'>{_e(a['node'])}</span> "
                f"#{a['attempt_id']} {score} · {took}{tags} · "
                f"<span class='plan' title='{_e(plan)}'>{_e(_short(plan))}</span></span>")
        kids = children.get(a["attempt_id"], [])
        return f"<li>{line}" + (f"<ul>{''.join(item(k) for k in kids)}</ul>" if kids else "") + "</li>"

    return f"<ul class='tree'>{''.join(item(a) for a in children[None])}</ul>"


def _ablations(result: dict) -> str:
    parts = []
    targets = {st["stage"]: st.get("block") for st in result.get("stages", [])}
    for abl in result.get("ablations", []):
        target = targets.get(f"outer_{abl['step']}")
        parts.append(f"<h3>Outer step {abl['step']}</h3>")
        if abl.get("rows"):
            parts.append(_figure(_plot_ablation(abl["rows"], target),
                                 f"Ablation, outer step {abl['step']}: the effect of each block"))
        if abl.get("text"):
            parts.append(f"<p>{_e(abl['text'])}</p>")
        parts.append(f"<p>Refined next: <span class='refined-key'>{_e(target)}</span></p>" if target else
                     "<p>No block was refined after this ablation.</p>")
        if abl.get("skipped"):
            parts.append("<p class='small'>Not ablated: " + "; ".join(
                f"{_e(k)} ({_e(why)})" for k, why in abl["skipped"]) + "</p>")
    return "\n".join(parts) or "<p class='none'>No ablation was run.</p>"


def _code(code: str, refined: list[str]) -> str:
    if not code:
        return "<p class='none'>No final_solution.py in the output folder.</p>"
    marks: dict[int, str] = {}  # line number -> refined block key
    notes = []
    try:
        blocks = {b.key: b for b in split_blocks(code)}
    except SyntaxError:
        blocks = {}
    steps: dict[str, list[int]] = defaultdict(list)
    for step, key in enumerate(refined, start=1):
        steps[key].append(step)
        b = blocks.get(key)
        if b is None:
            notes.append(f"{_e(key)} (outer step {step}): not a block of the final code")
            continue
        notes.append(f"<span class='refined-key'>{_e(key)}</span> (outer step {step}): lines {b.start}–{b.end}")
        for n in range(b.start, b.end + 1):
            marks[n] = key
    legend = ("<p>Refined blocks, highlighted below: " + "; ".join(notes) + ".</p>") if notes else \
        "<p>No block was refined.</p>"
    lines = []
    for n, text in enumerate(code.splitlines(), start=1):
        key = marks.get(n)
        attrs = f" class='line refined' data-block='{_e(key)}'" if key else " class='line'"
        if key and marks.get(n - 1) != key:
            when = ", ".join(str(s) for s in steps[key])
            lines.append(f"<span class='line blockhead'><span class='ln'></span><span class='blk'>{_e(key)}</span> "
                         f"refined in outer step {when}</span>")
        lines.append(f"<span{attrs}><span class='ln'>{n}</span>{_e(text)}</span>")
    return legend + f"<pre class='code'><code>{''.join(lines)}</code></pre>"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PLAN_CHARS else text[:PLAN_CHARS - 1] + "…"


def _fmt(x) -> str:
    if x is None:
        return "—"
    return f"{x:.5g}" if isinstance(x, float) else str(x)


def _e(x) -> str:
    return html.escape(str(x), quote=True)


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<nav><a href="#scores">scores</a> · <a href="#tree">solution tree</a> · <a href="#ablations">ablations</a> ·
<a href="#time">time</a> · <a href="#code">final code</a></nav>
<main>
{body}
</main>
</body>
</html>
"""

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0; background: #fafafa; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #ddd; padding: 6px 24px; z-index: 1; }
main { max-width: 1100px; margin: 0 auto; padding: 8px 24px 48px; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
a { color: #2b5d9b; }
figure { margin: 12px 0; background: #fff; border: 1px solid #e3e3e3; padding: 8px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.85em; color: #666; }
table { border-collapse: collapse; background: #fff; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; } td.num { text-align: right; }
.none, .small { color: #777; font-size: 0.9em; }
ul.tree, ul.tree ul { list-style: none; padding-left: 1.3em; margin: 0; }
ul.tree { padding-left: 0; background: #fff; border: 1px solid #e3e3e3; padding: 8px; font-size: 0.88em; }
ul.tree ul { border-left: 1px dashed #bbb; margin-left: 0.4em; }
ul.tree li { margin: 2px 0; }
.node { color: #fff; border-radius: 3px; padding: 0 5px; font-size: 0.85em; }
.tag { background: #eee; border-radius: 3px; padding: 0 4px; font-size: 0.8em; color: #555; }
.failed { color: #C44E52; font-weight: bold; }
.plan { color: #555; }
.chosen { font-weight: 600; }
.final { background: #fff3c4; }
.final-mark { color: #d19a00; }
pre.code { background: #fff; border: 1px solid #e3e3e3; padding: 8px 0; overflow-x: auto; font-size: 12.5px;
  line-height: 1.4; }
pre.code .line { display: block; padding-right: 12px; white-space: pre; }
pre.code .ln { display: inline-block; width: 3.5em; padding-right: 1em; text-align: right; color: #999;
  user-select: none; }
pre.code .refined { background: #e4f4e4; border-left: 4px solid #55A868; }
pre.code .line:not(.refined) { border-left: 4px solid transparent; }
.blk, .refined-key { background: #55A868; color: #fff; border-radius: 3px; padding: 0 5px; font-size: 0.85em; }
pre.code code { display: inline-block; min-width: 100%; }
pre.code .blockhead { background: #e4f4e4; border-left: 4px solid #55A868; color: #2d6b3c; user-select: none;
  font-family: system-ui, sans-serif; padding: 2px 0; }
"""
