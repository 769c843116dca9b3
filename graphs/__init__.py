"""The LangGraph side of mlestar: the run state, the one function that builds the graph from node plugins, and
the runner behind ``python -m core.run task.yaml``."""
