"""The graph factory that ``langgraph.json`` names, for the LangGraph CLI and Studio.

One graph serves any task: the input names it (``{"task": "path/to/task.yaml", "out": "..."}``); an empty input
runs ``MLESTAR_TASK`` (default: the bundled penguins example). The server supplies the checkpointer.
"""

from __future__ import annotations

import os
from pathlib import Path

from graphs.build import build_graph
from graphs.runner import RunContexts

DEFAULT_TASK = Path(__file__).resolve().parent.parent / "examples" / "penguins" / "task.yaml"


def make_graph(config: dict | None = None):
    return build_graph(contexts=RunContexts(default_task=os.environ.get("MLESTAR_TASK", str(DEFAULT_TASK)))).compile()
