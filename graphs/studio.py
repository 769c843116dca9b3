"""The graph factory that ``langgraph.json`` names, for the LangGraph CLI and Studio.

The task comes from ``MLESTAR_TASK`` (default: the bundled penguins example); the server supplies the checkpointer.
"""

from __future__ import annotations

import os
from pathlib import Path

from graphs.build import build_graph
from graphs.runner import open_run

DEFAULT_TASK = Path(__file__).resolve().parent.parent / "examples" / "penguins" / "task.yaml"


def make_graph(config: dict | None = None):
    rc = open_run(os.environ.get("MLESTAR_TASK", str(DEFAULT_TASK)), os.environ.get("MLESTAR_OUT"))
    return build_graph(rc).compile()
