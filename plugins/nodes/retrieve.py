"""The retrieve node: model cards for the task from the configured search backend."""

import inspect

from loguru import logger

from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from graphs.evaluate import ask


def make_retrieve(rc):
    limit = rc.task.budget.models
    kwargs = {}
    if "summarize" in inspect.signature(rc.search.search).parameters:  # backends that read web results
        kwargs["summarize"] = lambda results, n: ask(rc, "summarize_search", results, n)

    def retrieve(state: dict) -> dict:
        cards = rc.search.search(rc.ctx.card_query(), limit=limit, **kwargs)[:limit]
        logger.info(f"retrieve: {len(cards)} model cards: {', '.join(c.name for c in cards)}")
        return {"cards": [c.model_dump() for c in cards]}
    return retrieve


@hookimpl
def register_nodes(register):
    register(NodeSpec("retrieve", make_retrieve, description="model cards from the search backend"))
