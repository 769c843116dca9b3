"""Embedding mlestar in another LangGraph app: the compiled agent graph is one node of a parent graph, and one
compiled app serves any task: the task.yaml comes in the input state.

Run: python examples/embed.py [task.yaml] [--out DIR] [--checkpoints FILE --thread ID]. The parent adds a node after
the agent that reads its final state, and prints the agent's progress events as they stream out of the subgraph.
With --checkpoints the parent keeps its own SqliteSaver checkpoints: run the same command again after a crash (or
a kill) and the thread carries on where it stopped.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from graphs.build import build_graph
from graphs.runner import RunContexts
from graphs.state import RunState


class ParentState(RunState, total=False):
    summary: str  # the parent's own key, next to the agent's


def summarize(state: ParentState) -> dict:
    final = state.get("final", {})
    return {"summary": f"agent finished: {final.get('status')} with validation score {final.get('score')}"}


def build_parent(checkpointer=None):
    """The parent app, compiled once; each invocation names its task: ``{"task": "path/to/task.yaml"}``."""
    agent = build_graph(contexts=RunContexts()).compile()  # no checkpointer of its own: the parent's covers it
    parent = StateGraph(ParentState)
    parent.add_node("agent", agent)
    parent.add_node("summarize", summarize)
    parent.add_edge(START, "agent")
    parent.add_edge("agent", "summarize")
    parent.add_edge("summarize", END)
    return parent.compile(checkpointer=checkpointer)


def run(app, inputs: dict, config: dict | None = None) -> dict:
    """Stream one run (or carry on with the config's thread, when it stopped half-way), printing the agent's
    progress; returns the parent's final state."""
    if config and app.get_state(config).next:
        inputs = None  # resume the thread from its last checkpoint
    final = {}
    for namespace, mode, chunk in app.stream(inputs, config, stream_mode=["custom", "values"], subgraphs=True):
        if mode == "custom" and chunk.get("event") == "node_end":
            print(f"[{'/'.join(namespace) or 'parent'}] {chunk['node']} done, best so far {chunk.get('best')}",
                  flush=True)
        elif mode == "values" and not namespace:
            final = chunk
    return final


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="?", default=str(Path(__file__).parent / "penguins" / "task.yaml"))
    parser.add_argument("--out")
    parser.add_argument("--checkpoints", help="a SqliteSaver database for the parent's checkpoints")
    parser.add_argument("--thread", default="1", help="the thread to start or carry on (with --checkpoints)")
    args = parser.parse_args(argv)
    inputs = {"task": args.task, **({"out": args.out} if args.out else {})}
    if args.checkpoints:
        with sqlite3.connect(args.checkpoints, check_same_thread=False) as conn:
            final = run(build_parent(SqliteSaver(conn)), inputs, {"configurable": {"thread_id": args.thread}})
    else:
        final = run(build_parent(), inputs)
    print(final.get("summary"))
    return 0 if final.get("final", {}).get("status") == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
