"""Progress events: nodes emit them as LangGraph custom stream events, so the CLI and embedding apps see the same."""

from __future__ import annotations

from typing import Any


def emit(event: dict[str, Any]) -> None:
    """Send a custom stream event when running inside a graph; a no-op elsewhere (e.g. a node called in a test)."""
    try:
        from langgraph.config import get_stream_writer

        get_stream_writer()(event)
    except (RuntimeError, LookupError):
        pass
