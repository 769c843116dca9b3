"""Ablation variants of a script: one copy per block with that block removed, when no later code needs what it
defines, or replaced by a simpler version, so that running them shows what each block contributes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ablation.blocks import MARKER, Block, SpliceError, splice, split_blocks
from ablation.lines import reindent

SCORE_LINE = "Final Validation Performance"  # what every solution script prints; a variant without it measures nothing


@dataclass(frozen=True)
class Variant:
    """The full script with one block removed or simplified."""

    block_key: str
    kind: str
    action: str  # "remove" or "simplify"
    description: str
    code: str


def ablation_variants(
    code: str,
    blocks: list[Block] | None = None,
    simplify: Callable[[Block], str | None] | None = None,
    skip_kinds: tuple[str, ...] = ("imports", "load_data", "predict"),
) -> tuple[list[Variant], list[tuple[str, str]]]:
    """One variant per ablatable block; returns (variants, skipped) with skipped as (block_key, reason).

    A block is removed (replaced by `pass`, so a body never ends up empty) only when every name it defines that
    another block uses is also defined before it, as with `X = X.fillna(0)` or `df["a"] = ...`, and it does not
    print the validation score (a variant without that line measures nothing). Otherwise `simplify(block)` may
    return replacement code; without it, or when it returns None, the block is skipped with the reason.
    """
    blocks = split_blocks(code) if blocks is None else blocks
    variants: list[Variant] = []
    skipped: list[tuple[str, str]] = []
    for position, block in enumerate(blocks):
        if block.kind in skip_kinds:
            skipped.append((block.key, f"{block.kind} blocks are not ablated"))
            continue
        reason = _why_not_removable(blocks, position)
        if reason is None:
            removed = splice(code, block, f"pass  # ablation: {block.key} removed")
            variants.append(Variant(block.key, block.kind, "remove", f"remove {_describe(block)}", removed))
            continue
        simpler = simplify(block) if simplify is not None else None
        if simpler is None or not simpler.strip():
            skipped.append((block.key, reason))
            continue
        if reindent(simpler.rstrip("\r\n"), block.indent) == block.source:
            skipped.append((block.key, f"{reason}, and its simplified version is the block unchanged"))
            continue
        try:
            simplified = splice(code, block, simpler)
        except SpliceError as err:
            skipped.append((block.key, f"{reason}, and its simplified version cannot be spliced: {err}"))
            continue
        variants.append(Variant(block.key, block.kind, "simplify", f"simplify {_describe(block)}", simplified))
    return variants, skipped


def _why_not_removable(blocks: list[Block], position: int) -> str | None:
    block = blocks[position]
    if SCORE_LINE in block.source:
        return "it prints the validation score"
    defined_before = set().union(*(b.defines for b in blocks[:position]))
    # uses in earlier blocks count too: a function defined earlier reads globals when it is called later
    used_elsewhere = set().union(*(b.uses for i, b in enumerate(blocks) if i != position))
    missing = sorted((block.defines & used_elsewhere) - defined_before)
    if missing:
        return f"removing it would leave {', '.join(f'`{name}`' for name in missing)} undefined"
    return None


def _describe(block: Block) -> str:
    """`preprocess#1 (lines 20-23: add ratio features)`: the key plus the block's first comment or code line."""
    headline = block.key
    for line in block.source.splitlines():
        text = line.strip()
        if not text or MARKER.match(text):
            continue
        headline = text.lstrip("#").strip() or text
        break
    if len(headline) > 60:
        headline = headline[:57] + "..."
    return f"{block.key} (lines {block.start}-{block.end}: {headline})"
