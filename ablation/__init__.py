"""Ablation for solution scripts: split a script into blocks, run variants without each block, summarise which
block matters most, and splice a rewritten block back in."""

from ablation.blocks import KINDS, Block, SpliceError, instrument, reached_stages, splice, split_blocks
from ablation.summary import AblationRow, AblationSummary, effect_of, pick_target, summarize
from ablation.variants import Variant, ablation_variants

__all__ = [
    "KINDS",
    "AblationRow",
    "AblationSummary",
    "Block",
    "SpliceError",
    "Variant",
    "ablation_variants",
    "effect_of",
    "instrument",
    "pick_target",
    "reached_stages",
    "splice",
    "split_blocks",
    "summarize",
]
