"""What each ablated block contributes to the validation score, kept as plain data for a checkpointed graph state,
and the choice of the block to refine next."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ablation.blocks import Block
from core.policy import AblationEffect, AblationView
from ablation.variants import Variant

NOT_REFINED = ("imports", "load_data", "predict")


@dataclass
class AblationRow:
    """One variant's run; `effect` > 0 means the block helps (the score got worse without it)."""

    block_key: str
    kind: str
    action: str
    description: str
    status: str  # "ok" or the run's failure status
    score: float | None
    effect: float | None  # None when the variant failed or printed no score


@dataclass
class AblationSummary:
    base_score: float
    maximize: bool
    rows: list[AblationRow] = field(default_factory=list)

    def view(self, text: str = "") -> AblationView:
        """The study as policies receive it (typed rows, no markdown to parse back)."""
        rows = [AblationEffect(block=r.block_key, kind=r.kind, action=r.action, status=r.status, score=r.score,
                               effect=r.effect) for r in self.rows]
        return AblationView(base_score=self.base_score, maximize=self.maximize, rows=rows, text=text)

    def table(self) -> str:
        """Markdown table, the most helpful block first and failed variants last."""
        return self.view().table()

    def to_dict(self) -> dict:
        return {"base_score": self.base_score, "maximize": self.maximize, "rows": [asdict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, data: dict) -> AblationSummary:
        rows = [AblationRow(**row) for row in data.get("rows", [])]
        return cls(base_score=data["base_score"], maximize=data["maximize"], rows=rows)


def effect_of(base_score: float, score: float | None, maximize: bool) -> float | None:
    """How much the block helps: the score lost without it, whichever way the metric points."""
    if score is None or not math.isfinite(score):
        return None
    return base_score - score if maximize else score - base_score


def summarize(
    base_score: float, maximize: bool, runs: Iterable[tuple[Variant, str, float | None]]
) -> AblationSummary:
    """Build the summary from (variant, status, score) for each variant that was run."""
    rows = []
    for variant, status, score in runs:
        effect = effect_of(base_score, score, maximize) if status == "ok" else None
        rows.append(
            AblationRow(variant.block_key, variant.kind, variant.action, variant.description, status, score, effect)
        )
    return AblationSummary(base_score=base_score, maximize=maximize, rows=rows)


def pick_target(
    summary: AblationSummary,
    blocks: list[Block],
    refined: set[str],
    skip_kinds: tuple[str, ...] = NOT_REFINED,
) -> Block | None:
    """The block that matters most: the largest |effect|, whether removing it hurt or helped.

    Blocks whose key is in `refined` and blocks of `skip_kinds` are never picked. A failed variant says the block
    is essential but not by how much, so failures win only when no candidate's variant ran. Without any usable
    row, the first refinable block is returned; None when every block has been refined.
    """
    candidates = [b for b in blocks if b.kind not in skip_kinds and b.key not in refined]
    rows = {row.block_key: row for row in summary.rows}
    measured = [b for b in candidates if b.key in rows and rows[b.key].effect is not None]
    if measured:
        return max(measured, key=lambda b: abs(rows[b.key].effect))  # first of equals: the earliest block
    failed = [b for b in candidates if b.key in rows]
    if failed:
        return failed[0]
    return candidates[0] if candidates else None
