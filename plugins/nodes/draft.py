"""The draft node: one initial solution per model card (the graph sends each card to its own branch)."""

from loguru import logger

from core.cards import ModelCard
from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from graphs.evaluate import Job, ask, evaluate


def make_draft(rc):
    def draft(payload: dict) -> dict:
        card = ModelCard.model_validate(payload["card"])
        key = str(payload["index"])
        later = payload.get("phase") == "anytime"  # asked for by the scheduler after the first pass
        code = ask(rc, "write_initial", card)
        if not code:
            attempt = {"node": "draft", "code": "", "status": "no_code", "score": None, "label": card.name,
                       "message": "the policy wrote no script for this card"}
        else:
            # the first pass debugs its failed drafts together in the debug node; a later one is debugged here
            [attempt] = evaluate(rc, [Job(code, "draft", card.name, plan=f"initial solution: {card.name}")],
                                 debug=later)
        logger.info(f"draft {card.name}: {attempt.get('score') if attempt.get('score') is not None else attempt['status']}")
        if later and attempt.get("score") is not None:  # a new solution track, and a member for ensembles
            return {"drafts": {key: attempt}, "tracks": {card.name: attempt}, "pool": [attempt]}
        return {"drafts": {key: attempt}}
    return draft


@hookimpl
def register_nodes(register):
    register(NodeSpec("draft", make_draft, description="one initial solution per model card, in parallel"))
