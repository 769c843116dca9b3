"""``ast.parse`` behind one lock: CPython 3.11 can fail with "AST constructor recursion depth mismatch" when threads
parse at once (gh-106905), and parallel graph branches (drafts) parse candidate scripts concurrently."""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    with _LOCK:
        return ast.parse(source, filename)
