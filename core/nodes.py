"""The node registration type: what a ``register_nodes`` hook hands the host."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class NodeSpec:
    """A graph node provided by a plugin.

    ``make(ctx)`` receives the build context (task, policy, executor, run store, registry) and returns the node
    function ``state -> partial update``. ``replaces`` names a node this one takes the place of; ``after`` names a
    node this one is inserted behind (between it and whatever followed it). Neither: a built-in topology node.
    """

    name: str
    make: Callable[[Any], Callable[[dict], dict]]
    replaces: str | None = None
    after: str | None = None
    description: str = ""
