"""The target node: the block that matters most in the latest ablation and was not refined before."""

from loguru import logger

from ablation import AblationSummary, pick_target, split_blocks
from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from graphs.worklist import MAIN, head_of, stale_key


def make_target(rc):
    def target(state: dict) -> dict:
        record = state["ablation"]
        summary = AblationSummary.from_dict({k: record[k] for k in ("base_score", "maximize", "rows")})
        head = head_of(state)
        blocks = split_blocks(head["code"])
        if state.get("phase") == "anytime":  # a block may be refined again, unless it was from this very head
            track = state.get("track", MAIN)
            done = {b.key for b in blocks if stale_key(track, b.key, head) in set(state.get("stale", []))}
        else:  # MLE-STAR's first pass refines each block at most once
            done = set(state.get("refined", []))
        block = pick_target(summary, blocks, done)
        if block is None:
            logger.info("target: every refinable block was refined already")
            return {"target": None, "notes": ["outer loop ended early: no block left to refine"]}
        logger.info(f"target: {block.key} (lines {block.start}-{block.end})")
        return {"target": {"key": block.key, "kind": block.kind, "source": block.source}}
    return target


@hookimpl
def register_nodes(register):
    register(NodeSpec("target", make_target, description="pick the block to refine from the ablation summary"))
