"""The heuristic policy: every MLE-STAR role done by rules, offline and deterministically, on scripts whose blocks
carry their own specs. It is also the fallback when another policy has nothing usable."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.cards import ModelCard
from core.errors import PluginError
from core.policy import (
    AblationView,
    BlockInfo,
    CandidateInfo,
    Estimate,
    PlanRecord,
    TaskContext,
    WorkItem,
    WorkOutcome,
)
from plugins.heuristic import ensemble, estimates
from space import draft, ops, repair
from space.render import block_spec, render_block, render_script, rendered, replace_block, specs_of
from space.specs import ModelSpec, TrainSpec

RESERVED_FILES = {"train.csv", "valid.csv", "test.csv", "sample_submission.csv"}


class HeuristicPolicy:
    """Rule-based roles. Options: ``seed`` (int) overrides the task's seed in the scripts it writes."""

    name = "heuristic"
    framework_code = True  # every script it writes is rendered from the space's templates

    def __init__(self, options: dict | None = None, *, task=None):
        options = dict(options or {})
        unknown = sorted(set(options) - {"seed"})
        if unknown:
            raise PluginError(f"policy heuristic: unknown option {unknown[0]!r} (known: seed)")
        seed = options.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise PluginError(f"policy heuristic: option 'seed' must be an integer, got {seed!r}")
        self.seed = seed
        self.task = task

    def _ctx(self, ctx: TaskContext) -> TaskContext:
        return ctx if self.seed is None else ctx.model_copy(update={"seed": self.seed})

    # --- retrieval and drafting ----------------------------------------------------------------------------------

    def summarize_search(self, ctx: TaskContext, results: list[dict], limit: int) -> list[ModelCard] | None:
        """The catalogue cards the results talk about, most mentioned first (ties: first mentioned)."""
        from retrieval.web import cards_from_results  # lazily: another plugin's module

        return cards_from_results(results, ctx.card_query(), limit) or None

    def write_initial(self, ctx: TaskContext, card: ModelCard) -> str | None:
        ctx = self._ctx(ctx)
        spec = draft.initial_spec(ctx, card)
        return render_script(ctx, spec) if spec is not None else None

    def merge(self, ctx: TaskContext, base_code: str, reference_code: str) -> str | None:
        ctx = self._ctx(ctx)
        base, reference = specs_of(base_code), specs_of(reference_code)
        if not isinstance(base.get("model"), ModelSpec) or not isinstance(reference.get("model"), ModelSpec):
            return None
        model = draft.merged_model(ctx, base["model"], reference["model"], base.get("preprocess"))
        if model is None:
            return None
        code = replace_block(base_code, "model", render_block(ctx, "model", model))
        trains = (base.get("train"), reference.get("train"))
        train = draft.merged_train(*trains) if all(isinstance(t, TrainSpec) for t in trains) else None
        return replace_block(code, "train", render_block(ctx, "train", train)) if code and train else code

    # --- ablation and refinement ---------------------------------------------------------------------------------

    def simplify_block(self, ctx: TaskContext, code: str, block: BlockInfo) -> str | None:
        ctx = self._ctx(ctx)
        simple = repair.simpler_spec(ctx, block.kind, block_spec(block.source, block.kind))
        return rendered(ctx, block, simple) if simple is not None else None

    def summarize_ablation(self, ctx: TaskContext, ablation: AblationView) -> str:
        return summarize(ctx, ablation)

    def plan_refinement(self, ctx: TaskContext, code: str, block: BlockInfo, ablation: AblationView,
                        history: list[PlanRecord], n: int) -> list[str]:
        return ops.candidate_plans(self._ctx(ctx), code, block, history, ablation.base_score, n)

    def implement_plan(self, ctx: TaskContext, code: str, block: BlockInfo, plan: str) -> str | None:
        return ops.implement(self._ctx(ctx), code, block, plan)

    # --- debugging and checks ------------------------------------------------------------------------------------

    def debug(self, ctx: TaskContext, code: str, error: str) -> str | None:
        return repair.debug_script(self._ctx(ctx), code, error)

    def fix_leakage(self, ctx: TaskContext, code: str, findings: list[str]) -> str | None:
        return repair.rerender(self._ctx(ctx), code, ("load_data", "preprocess", "train"))

    def use_all_data(self, ctx: TaskContext, code: str, unused_files: list[str]) -> str | None:
        files = [f for f in unused_files if f.lower().endswith(".csv") and f not in RESERVED_FILES]
        files = [f for f in files if self._shares_a_column(ctx, f)]
        return repair.with_joins(self._ctx(ctx), code, files) if files else None

    def _shares_a_column(self, ctx: TaskContext, name: str) -> bool:
        """Whether the file has a column train.csv has too; unknown (no task to read it from): let the script check."""
        path = getattr(self.task, "public_files", {}).get(name) if self.task is not None else None
        if path is None or not Path(path).is_file():
            return True
        try:
            header = pd.read_csv(path, nrows=0).columns
        except Exception:  # noqa: BLE001 - not a table we can read: nothing to join
            return False
        known = {c.name for c in ctx.columns} | {ctx.id_column}
        return any(str(c) in known for c in header)

    # --- ensembling ----------------------------------------------------------------------------------------------

    def plan_ensemble(self, ctx: TaskContext, candidates: list[CandidateInfo], history: list[PlanRecord]) -> str | None:
        return ensemble.next_ensemble_plan(self._ctx(ctx), candidates, history)

    def implement_ensemble(self, ctx: TaskContext, candidates: list[CandidateInfo], plan: str) -> str | None:
        return ensemble.ensemble_script(self._ctx(ctx), candidates, plan)

    # --- scheduling ----------------------------------------------------------------------------------------------

    def estimate(self, ctx: TaskContext, item: WorkItem, done: list[WorkOutcome]) -> Estimate:
        return estimates.estimate(ctx, item, done)


def summarize(ctx: TaskContext, ablation: AblationView) -> str:
    """A few factual sentences from the ablation rows: the base score, then each block's effect, largest first."""
    direction = "higher" if ctx.maximize else "lower"
    parts = [f"Base validation score {ablation.base_score:.6g} ({ctx.metric}, {direction} is better)."
             if ablation.base_score is not None else f"Metric {ctx.metric} ({direction} is better)."]
    measured = sorted((r for r in ablation.rows if r.effect is not None), key=lambda r: -abs(r.effect))
    for i, row in enumerate(measured):
        what = f"{'Removing' if row.action == 'remove' else 'Simplifying'} {row.block}"
        score = f"{row.score:.6g}" if row.score is not None else "n/a"
        if abs(row.effect) < 1e-12:
            parts.append(f"{what} leaves the score unchanged ({score}).")
        elif row.effect > 0:
            parts.append(f"{what} costs {row.effect:.4g} (score {score})" + (": it contributes most." if i == 0 else "."))
        else:
            parts.append(f"{what} improves the score by {-row.effect:.4g} (score {score}): that block, as it "
                         "is, hurts and is worth reworking.")
    for row in (r for r in ablation.rows if r.effect is None):
        parts.append(f"The variant of {row.block} failed ({row.status}), so that block is needed as written.")
    if not ablation.rows:
        parts.append("No ablation variant ran, so no block's contribution is known.")
    return " ".join(parts)
