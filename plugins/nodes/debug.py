"""The debug node: one round of the debugger over the initial solutions that failed. Every first pass passes
through it (the one place that sees all the drafts at once); it does nothing when none is left to repair."""

from loguru import logger

from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from graphs.evaluate import debug_rounds, drafts_to_debug


def make_debug(rc):
    def debug(state: dict) -> dict:
        drafts = state.get("drafts", {})
        failed = drafts_to_debug(rc, state)
        if not failed:
            return {}
        fixed = debug_rounds(rc, [drafts[k] for k in failed], rounds=1)
        repaired = sum(a.get("score") is not None for a in fixed)
        logger.info(f"debug round {state.get('debug_round', 0) + 1}: {repaired} of {len(failed)} failed drafts repaired")
        return {"drafts": dict(zip(failed, fixed)), "debug_round": state.get("debug_round", 0) + 1}
    return debug


@hookimpl
def register_nodes(register):
    register(NodeSpec("debug", make_debug, description="debugger over failed initial solutions"))
