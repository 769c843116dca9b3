"""The retrieve node: model cards for the task from the configured search backend."""

from loguru import logger

from core.hookspecs import hookimpl
from core.nodes import NodeSpec


def make_retrieve(rc):
    def retrieve(state: dict) -> dict:
        cards = rc.search.search(rc.ctx.card_query(), limit=rc.task.budget.models)[: rc.task.budget.models]
        logger.info(f"retrieve: {len(cards)} model cards: {', '.join(c.name for c in cards)}")
        return {"cards": [c.model_dump() for c in cards]}
    return retrieve


@hookimpl
def register_nodes(register):
    register(NodeSpec("retrieve", make_retrieve, description="model cards from the search backend"))
