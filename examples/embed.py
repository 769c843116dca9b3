"""Embedding mlestar in another LangGraph app: the compiled agent graph is one node of a parent graph.

Run: python examples/embed.py [task.yaml] — the parent adds a node after the agent that reads its final state, and
prints the agent's progress events as they stream out of the subgraph.
"""

from __future__ import annotations

import sys
from pathlib import Path

from langgraph.graph import END, START, StateGraph

from graphs.build import build_graph
from graphs.runner import open_run
from graphs.state import RunState


class ParentState(RunState, total=False):
    summary: str  # the parent's own key, next to the agent's


def summarize(state: ParentState) -> dict:
    final = state.get("final", {})
    return {"summary": f"agent finished: {final.get('status')} with validation score {final.get('score')}"}


def build_parent(task_path: str | Path, out: str | Path | None = None):
    rc = open_run(task_path, out)
    agent = build_graph(rc).compile()  # no checkpointer of its own: the parent's (if any) covers it
    parent = StateGraph(ParentState)
    parent.add_node("agent", agent)
    parent.add_node("summarize", summarize)
    parent.add_edge(START, "agent")
    parent.add_edge("agent", "summarize")
    parent.add_edge("summarize", END)
    return parent.compile()


def main(argv: list[str]) -> int:
    task = argv[0] if argv else str(Path(__file__).parent / "penguins" / "task.yaml")
    app = build_parent(task, argv[1] if len(argv) > 1 else None)
    final = {}
    for namespace, mode, chunk in app.stream({}, stream_mode=["custom", "values"], subgraphs=True):
        if mode == "custom" and chunk.get("event") == "node_end":
            print(f"[{'/'.join(namespace) or 'parent'}] {chunk['node']} done, best so far {chunk.get('best')}")
        elif mode == "values" and not namespace:
            final = chunk
    print(final.get("summary"))
    return 0 if final.get("final", {}).get("status") == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
