"""The debug node: one round of the debugger over the initial solutions that failed."""

from loguru import logger

from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from graphs.evaluate import debug_rounds


def make_debug(rc):
    def debug(state: dict) -> dict:
        drafts = state.get("drafts", {})
        failed = [k for k, a in drafts.items() if a.get("score") is None and a.get("code")]
        fixed = debug_rounds(rc, [drafts[k] for k in failed], rounds=1)
        repaired = sum(a.get("score") is not None for a in fixed)
        logger.info(f"debug round {state.get('debug_round', 0) + 1}: {repaired} of {len(failed)} failed drafts repaired")
        return {"drafts": dict(zip(failed, fixed)), "debug_round": state.get("debug_round", 0) + 1}
    return debug


@hookimpl
def register_nodes(register):
    register(NodeSpec("debug", make_debug, description="debugger over failed initial solutions"))
