"""The one function that builds the LangGraph ``StateGraph`` from the registered node plugins, and the topology
it follows (the default MLE-STAR order, with the replacements and insertions plugins or task.yaml ask for)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from core.errors import PluginError, TaskError
from core.nodes import NodeSpec
from core.registry import Registry
from core.task import Task
from graphs.evaluate import drafts_to_debug
from graphs.progress import emit
from graphs.state import RunState

DEFAULT_ORDER = ("retrieve", "draft", "debug", "merge", "ablate", "target", "refine", "ensemble", "schedule", "check",
                 "submit")


@dataclass
class Placed:
    spec: NodeSpec
    plugin: str
    slot: str  # the graph node's name: a default slot, or the inserted node's own name
    after: str | None = None


@dataclass
class Topology:
    nodes: dict[str, Placed] = field(default_factory=dict)  # in graph order of insertion
    inserted: list[Placed] = field(default_factory=list)
    unplaced: list[Placed] = field(default_factory=list)


def plan_topology(registry: Registry, task: Task | None = None) -> Topology:
    """Which plugin provides each node and where inserted nodes go; errors name the plugins involved, or the
    task.yaml placement that leaves ``submit`` unreachable (see ``dead_end``)."""
    placements = list(task.graph.nodes) if task else []
    topo = _plan(registry, placements, task)
    problem = dead_end(wire(topo, None))
    if problem:
        # blame the first of task.yaml's placements whose addition breaks the graph, else the plugins' own ones
        for i, placed in enumerate(placements):
            if _breaks(registry, placements[:i + 1], task):
                how = (f"after '{placed.after}'" if placed.after else
                       f"in place of '{placed.replaces}'" if placed.replaces else "where its plugin puts it")
                raise TaskError(f"{task.source}: graph.nodes: placing '{placed.node}' {how} {problem}; place it "
                                f"elsewhere or remove it")
        ins = ", ".join(f"'{p.slot}' of plugin '{p.plugin}' after '{p.after}'" for p in topo.inserted)
        raise PluginError(f"the plugins' node placements ({ins}) {problem}; block one with MLESTAR_DISABLE_PLUGINS")
    return topo


def _breaks(registry: Registry, placements: list, task: Task) -> bool:
    try:
        return bool(dead_end(wire(_plan(registry, placements, task), None)))
    except PluginError:  # a placement behind a node that a later placement puts in: not the one to blame
        return False


def dead_end(edges: dict[str, Edge]) -> str:
    """What keeps a run from ending in ``submit`` (empty when nothing does): ``submit`` unreachable from the entry
    node, a node from which no path leads to the end (a loop with no way out), or a way to the end around ``submit``.
    Every router's branch counts as taken: a branch taken only sometimes still has to lead somewhere."""
    def reach(start: str, skip: str = "") -> set[str]:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node in seen or node == skip:
                continue
            seen.add(node)
            todo += list(edges[node].targets) if node in edges else []
        return seen

    entry = "retrieve"
    reachable = reach(entry)
    if "submit" not in reachable:
        return f"leaves 'submit' unreachable from '{entry}'"
    stuck = sorted(n for n in reachable if n != END and END not in reach(n))
    if stuck:
        shown = ", ".join(stuck[:4]) + (", ..." if len(stuck) > 4 else "")
        return f"makes a loop with no way out to 'submit' (through {shown})"
    if END in reach(entry, skip="submit"):
        return "lets a run end without passing 'submit'"
    return ""


def _plan(registry: Registry, placements: list, task: Task | None) -> Topology:
    by_name: dict[str, Placed] = {}
    for spec, plugin in registry.nodes:
        if spec.name in by_name:
            other = by_name[spec.name].plugin
            raise PluginError(f"node '{spec.name}' is registered by both plugin '{other}' and plugin '{plugin}'; "
                              f"block one with MLESTAR_DISABLE_PLUGINS")
        by_name[spec.name] = Placed(spec, plugin, spec.name, spec.after)
    placements = {p.node: p for p in placements}
    where = f"{task.source}: graph.nodes" if task else "graph"
    for name in placements:
        if name not in by_name:
            raise PluginError(f"{where}: no plugin registers a node named '{name}' "
                              f"(registered: {', '.join(sorted(by_name))})")
    topo = Topology()
    replacements: dict[str, Placed] = {}
    for name, placed in by_name.items():
        p = placements.get(name)
        replaces = p.replaces if p and p.replaces else (None if p and p.after else placed.spec.replaces)
        after = p.after if p and p.after else (None if p and p.replaces else placed.spec.after)
        if replaces:
            if replaces not in DEFAULT_ORDER:
                raise PluginError(f"node '{name}' of plugin '{placed.plugin}' replaces '{replaces}', which is not a "
                                  f"node of the graph ({', '.join(DEFAULT_ORDER)})")
            if replaces in replacements:
                raise PluginError(f"node '{replaces}' is replaced by both plugin '{replacements[replaces].plugin}' "
                                  f"and plugin '{placed.plugin}'; keep one")
            replacements[replaces] = Placed(placed.spec, placed.plugin, replaces)
        elif after:
            topo.inserted.append(Placed(placed.spec, placed.plugin, name, after))
        elif name not in DEFAULT_ORDER:
            topo.unplaced.append(placed)
    for slot in DEFAULT_ORDER:
        chosen = replacements.get(slot) or by_name.get(slot)
        if chosen is None:
            raise PluginError(f"no plugin provides the '{slot}' node (was its plugin blocked?); "
                              f"`python -m core.run plugins` lists what is loaded")
        topo.nodes[slot] = Placed(chosen.spec, chosen.plugin, slot)
    known = set(topo.nodes)
    for ins in topo.inserted:
        if ins.after not in known:
            raise PluginError(f"node '{ins.slot}' of plugin '{ins.plugin}' goes after '{ins.after}', which is not "
                              f"in the graph ({', '.join(sorted(known))})")
        known.add(ins.slot)
        topo.nodes[ins.slot] = ins
    return topo


@dataclass
class Edge:
    kind: str  # "fixed" | "route" | "send"
    targets: tuple[str, ...]
    fn: Callable[[dict], Any] | None = None


def default_edges(context: Callable[[dict], Any] | None) -> dict[str, Edge]:
    """MLE-STAR's first pass (its counts size it), then the anytime loop: ``schedule`` picks the next work item
    until the search time is spent or nothing is left; routers read the state and the run's budget through
    ``context(state)`` (the run context; None when only drawing)."""

    def anytime(state: dict) -> bool:
        return state.get("phase") == "anytime"

    def fan_out(state: dict) -> list[Send]:
        return [Send("draft", {**run_keys(state), "card": card, "index": i})
                for i, card in enumerate(state.get("cards", []))]

    def after_draft(state: dict) -> str:
        # each draft branch routes on its own view of the state (the drafts of the branches still running are not
        # in it): the first pass's branches all go to debug, which runs once they all ended and sees every draft;
        # routing here on failures split the run in two (a failed draft's branch to debug, the others' to merge)
        return "schedule" if anytime(state) else "debug"

    def after_debug(state: dict) -> str:
        return "debug" if drafts_to_debug(context(state), state) else "merge"

    def after_merge(state: dict) -> str:
        rc = context(state)
        go = rc.task.budget.outer_steps > 0 and rc.search_time_left() > 0 and state.get("best")
        return "ablate" if go else "ensemble"

    def after_target(state: dict) -> str:
        if state.get("target") and context(state).search_time_left() > 0:
            return "refine"
        return "schedule" if anytime(state) else "ensemble"

    def after_refine(state: dict) -> str:
        if anytime(state):
            return "schedule"
        rc = context(state)
        more = state.get("outer_step", 0) < rc.task.budget.outer_steps
        return "ablate" if more and rc.search_time_left() > 0 else "ensemble"

    def after_schedule(state: dict):
        work = state.get("work")
        if not work:
            return "check"
        item = work["item"]
        if item["kind"] == "draft":
            card = next(c for c in state.get("cards", []) if c["name"] == item["card"])
            return [Send("draft", {**run_keys(state), "card": card, "index": len(state.get("drafts", {})),
                                   "phase": "anytime"})]
        return {"refine": "ablate", "ensemble": "ensemble"}[item["kind"]]

    return {
        "retrieve": Edge("send", ("draft",), fan_out),
        "draft": Edge("route", ("debug", "schedule"), after_draft),
        "debug": Edge("route", ("debug", "merge"), after_debug),
        "merge": Edge("route", ("ablate", "ensemble"), after_merge),
        "ablate": Edge("fixed", ("target",)),
        "target": Edge("route", ("refine", "ensemble", "schedule"), after_target),
        "refine": Edge("route", ("ablate", "ensemble", "schedule"), after_refine),
        "ensemble": Edge("fixed", ("schedule",)),
        "schedule": Edge("route", ("ablate", "draft", "ensemble", "check"), after_schedule),
        "check": Edge("fixed", ("submit",)),
        "submit": Edge("fixed", (END,)),
    }


def run_keys(state: dict) -> dict:
    """What names the run in a state (the task.yaml and output folder of a graph that serves many tasks): a Send
    branch's own state carries it too, so the branch finds its run."""
    return {k: state[k] for k in ("task", "out") if k in state}


def wire(topo: Topology, context: Callable[[dict], Any] | None) -> dict[str, Edge]:
    """Default edges with each inserted node spliced in behind its ``after`` node."""
    edges = default_edges(context)
    for ins in topo.inserted:
        edges[ins.slot] = edges[ins.after]
        edges[ins.after] = Edge("fixed", (ins.slot,))
    return edges


def build_graph(rc=None, topo: Topology | None = None, *, contexts=None) -> StateGraph:
    """The uncompiled graph: compile it with a checkpointer, or add it to a parent graph.

    Bound to one run (``rc``, a RunContext), or serving any task: then each run's input state names its task.yaml
    (``task``; ``out`` overrides its output folder) and ``contexts`` (graphs.runner.RunContexts: the plugins the
    graph was built with) gives each run its context when its first node runs."""
    if rc is not None:
        def context(state: dict):
            return rc
        registry, task = rc.registry, rc.task
    else:
        if contexts is None:
            raise TypeError("build_graph needs a run context (rc) or, for a graph that serves any task, contexts")
        context, registry, task = contexts.get, contexts.registry, None
    topo = topo or plan_topology(registry, task)
    return _assemble(topo, wire(topo, context), lambda placed: _timed(placed.slot, placed.spec.make, context))


def _assemble(topo: Topology, edges: dict[str, Edge], make: Callable[[Placed], Callable]) -> StateGraph:
    graph = StateGraph(RunState)
    for slot, placed in topo.nodes.items():
        graph.add_node(slot, make(placed))
    graph.add_edge(START, "retrieve")
    for slot, edge in edges.items():
        if edge.kind == "fixed":
            graph.add_edge(slot, edge.targets[0])
        else:
            graph.add_conditional_edges(slot, edge.fn or (lambda s: edge.targets[0]), list(edge.targets))
    return graph


def _timed(name: str, make: Callable[[Any], Callable[[dict], dict]], context: Callable[[dict], Any]
           ) -> Callable[[dict], dict]:
    """The node for slot ``name``: built by its plugin for the run's context when the run first reaches it; it adds
    the node's seconds to the state, saves the budget clock, and tells embedding apps what happened."""
    built: dict[int, tuple[Any, Callable[[dict], dict]]] = {}  # id(run context) -> (context, node function)
    lock = threading.Lock()  # parallel branches (drafts) reach a node at once

    def node(state: dict) -> dict:
        rc = context(state)
        with lock:
            if id(rc) not in built:
                built[id(rc)] = (rc, make(rc))  # the context is kept with it, so its id is not reused
            fn = built[id(rc)][1]
        emit({"event": "node_start", "node": name})
        started = time.monotonic()
        update = fn(state) or {}
        seconds = time.monotonic() - started
        update = {**update, "timings": [*update.get("timings", []), {"node": name, "seconds": round(seconds, 3)}]}
        rc.clock.save()
        best = update.get("best") or state.get("best") or {}
        emit({"event": "node_end", "node": name, "seconds": round(seconds, 3), "best": best.get("score"),
              "elapsed": round(rc.clock.elapsed(), 1), "budget": rc.task.budget.total_seconds})
        return update
    node.__name__ = name
    return node


def describe_topology(task: Task, registry: Registry) -> str:
    """The topology in force as text (which plugin provides each node) and as Mermaid."""
    topo = plan_topology(registry, task)
    edges = wire(topo, None)
    lines = ["nodes (in order of the default flow; inserted nodes last):"]
    for slot, placed in topo.nodes.items():
        how = f"inserted after {placed.after}" if placed.after else (
            f"replaced by '{placed.spec.name}'" if placed.spec.name != slot else "built in")
        lines.append(f"  {slot:<10} plugin {placed.plugin:<12} {how}  {placed.spec.description}")
    for placed in topo.unplaced:
        lines.append(f"  (available, not placed) {placed.spec.name} from plugin {placed.plugin}")
    lines.append("edges:")
    for slot, edge in edges.items():
        arrow = {"fixed": "->", "route": "-?>", "send": "=>"}[edge.kind]
        lines.append(f"  {slot} {arrow} {' | '.join(edge.targets)}")
    # For drawing only: the nodes are never run, so each is a placeholder that returns no update.
    mermaid = _assemble(topo, edges, lambda placed: (lambda state: {})).compile().get_graph().draw_mermaid()
    return "\n".join(lines) + "\n\nmermaid:\n" + mermaid
